//! ELBv2 rows: load balancers, listeners and their certificates, listener rules, target groups and their
//! registered targets, which load balancer and target groups each Express service uses, and which target
//! group each service revision's tasks join. Rule conditions and actions, health checks and attributes are
//! JSON the control plane writes and reads; the store does not interpret them.

use rusqlite::{OptionalExtension, Row, params};

use crate::{Epoch, Result, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancerRow {
    pub arn: String,
    pub name: String,
    pub scheme: String,
    pub dns_name: String,
    /// JSON object of attribute key → value.
    pub attributes: String,
    pub created_at: Epoch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerRow {
    pub arn: String,
    pub load_balancer_arn: String,
    pub port: u16,
    pub protocol: String,
    /// JSON array of actions.
    pub default_actions: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListenerCertificateRow {
    pub listener_arn: String,
    pub certificate_arn: String,
    /// The host whose stored certificate this is (see `certificates`).
    pub host: String,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    pub arn: String,
    pub listener_arn: String,
    /// `None`: the listener's default rule.
    pub priority: Option<u32>,
    /// JSON array of conditions.
    pub conditions: String,
    /// JSON array of actions.
    pub actions: String,
    /// The Express service whose endpoint rule this is (`None`: a user's rule or a default rule).
    pub service_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroupRow {
    pub arn: String,
    pub name: String,
    /// The Express service the group belongs to.
    pub service_id: Option<i64>,
    pub protocol: String,
    pub port: u16,
    /// JSON health check settings.
    pub health_check: String,
    /// JSON object of attribute key → value.
    pub attributes: String,
    pub created_at: Epoch,
}

/// Where an Express service's traffic goes: its load balancer and its two target groups.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementRow {
    pub service_id: i64,
    pub load_balancer_arn: String,
    pub group_a: String,
    pub group_b: String,
}

fn lb(r: &Row<'_>) -> rusqlite::Result<LoadBalancerRow> {
    Ok(LoadBalancerRow {
        arn: r.get(0)?,
        name: r.get(1)?,
        scheme: r.get(2)?,
        dns_name: r.get(3)?,
        attributes: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn listener(r: &Row<'_>) -> rusqlite::Result<ListenerRow> {
    Ok(ListenerRow {
        arn: r.get(0)?,
        load_balancer_arn: r.get(1)?,
        port: r.get(2)?,
        protocol: r.get(3)?,
        default_actions: r.get(4)?,
    })
}

fn rule(r: &Row<'_>) -> rusqlite::Result<RuleRow> {
    Ok(RuleRow {
        arn: r.get(0)?,
        listener_arn: r.get(1)?,
        priority: r.get(2)?,
        conditions: r.get(3)?,
        actions: r.get(4)?,
        service_id: r.get(5)?,
    })
}

fn tg(r: &Row<'_>) -> rusqlite::Result<TargetGroupRow> {
    Ok(TargetGroupRow {
        arn: r.get(0)?,
        name: r.get(1)?,
        service_id: r.get(2)?,
        protocol: r.get(3)?,
        port: r.get(4)?,
        health_check: r.get(5)?,
        attributes: r.get(6)?,
        created_at: r.get(7)?,
    })
}

fn placement(r: &Row<'_>) -> rusqlite::Result<PlacementRow> {
    Ok(PlacementRow { service_id: r.get(0)?, load_balancer_arn: r.get(1)?, group_a: r.get(2)?, group_b: r.get(3)? })
}

const LB_COLS: &str = "arn, name, scheme, dns_name, attributes, created_at";
const LISTENER_COLS: &str = "arn, load_balancer_arn, port, protocol, default_actions";
const RULE_COLS: &str = "arn, listener_arn, priority, conditions, actions, service_id";
const TG_COLS: &str = "arn, name, service_id, protocol, port, health_check, attributes, created_at";

impl Tx<'_> {
    /// The route generation: bumped, by triggers in the writing transaction, by every write that can change
    /// the route table (see the migration that creates `route_generation`), so an unchanged value means an
    /// unchanged table.
    pub fn route_generation(&self) -> Result<u64> {
        Ok(self.conn().query_row("SELECT n FROM route_generation WHERE id = 0", [], |r| r.get::<_, i64>(0))?.max(0)
            as u64)
    }

    fn all<T>(&self, sql: &str, p: impl rusqlite::Params, f: fn(&Row<'_>) -> rusqlite::Result<T>) -> Result<Vec<T>> {
        let mut st = self.conn().prepare(sql)?;
        let rows = st.query_map(p, f)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- load balancers

    pub fn lb_insert(&self, l: &LoadBalancerRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO elbv2_load_balancers({LB_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![l.arn, l.name, l.scheme, l.dns_name, l.attributes, l.created_at],
        )?;
        Ok(())
    }

    /// Every load balancer, oldest first.
    pub fn lbs(&self) -> Result<Vec<LoadBalancerRow>> {
        self.all(&format!("SELECT {LB_COLS} FROM elbv2_load_balancers ORDER BY created_at, arn"), [], lb)
    }

    pub fn lb_get(&self, arn: &str) -> Result<Option<LoadBalancerRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {LB_COLS} FROM elbv2_load_balancers WHERE arn = ?1"), [arn], lb)
            .optional()?)
    }

    pub fn lb_set_attributes(&self, arn: &str, attributes: &str) -> Result<()> {
        self.conn()
            .execute("UPDATE elbv2_load_balancers SET attributes = ?2 WHERE arn = ?1", params![arn, attributes])?;
        Ok(())
    }

    /// Deletes a load balancer with its listeners, their certificates and rules, and its tags.
    pub fn lb_delete(&self, arn: &str) -> Result<()> {
        for l in self.listeners(arn)? {
            for r in self.rules(&l.arn)? {
                self.conn().execute("DELETE FROM tags WHERE resource_arn = ?1", [&r.arn])?;
            }
            self.conn().execute("DELETE FROM tags WHERE resource_arn = ?1", [&l.arn])?;
        }
        self.conn().execute("DELETE FROM tags WHERE resource_arn = ?1", [arn])?;
        self.conn().execute("DELETE FROM elbv2_load_balancers WHERE arn = ?1", [arn])?;
        Ok(())
    }

    // ---- listeners

    pub fn listener_insert(&self, l: &ListenerRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO elbv2_listeners({LISTENER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![l.arn, l.load_balancer_arn, l.port, l.protocol, l.default_actions],
        )?;
        Ok(())
    }

    /// The listeners of a load balancer, by port.
    pub fn listeners(&self, lb_arn: &str) -> Result<Vec<ListenerRow>> {
        self.all(
            &format!("SELECT {LISTENER_COLS} FROM elbv2_listeners WHERE load_balancer_arn = ?1 ORDER BY port"),
            [lb_arn],
            listener,
        )
    }

    pub fn listener_get(&self, arn: &str) -> Result<Option<ListenerRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {LISTENER_COLS} FROM elbv2_listeners WHERE arn = ?1"), [arn], listener)
            .optional()?)
    }

    pub fn listener_certificate_add(&self, c: &ListenerCertificateRow) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO elbv2_listener_certificates(listener_arn, certificate_arn, host, is_default) \
             VALUES (?1, ?2, ?3, ?4)",
            params![c.listener_arn, c.certificate_arn, c.host, c.is_default],
        )?;
        Ok(())
    }

    pub fn listener_certificate_remove_host(&self, listener_arn: &str, host: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM elbv2_listener_certificates WHERE listener_arn = ?1 AND host = ?2 AND is_default = 0",
            params![listener_arn, host],
        )?;
        Ok(())
    }

    /// A listener's certificates, the default first.
    pub fn listener_certificates(&self, listener_arn: &str) -> Result<Vec<ListenerCertificateRow>> {
        self.all(
            "SELECT listener_arn, certificate_arn, host, is_default FROM elbv2_listener_certificates \
             WHERE listener_arn = ?1 ORDER BY is_default DESC, host",
            [listener_arn],
            |r| {
                Ok(ListenerCertificateRow {
                    listener_arn: r.get(0)?,
                    certificate_arn: r.get(1)?,
                    host: r.get(2)?,
                    is_default: r.get(3)?,
                })
            },
        )
    }

    // ---- rules

    pub fn rule_insert(&self, r: &RuleRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO elbv2_rules({RULE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![r.arn, r.listener_arn, r.priority, r.conditions, r.actions, r.service_id],
        )?;
        Ok(())
    }

    /// Rewrites a rule's priority, conditions and actions.
    pub fn rule_update(&self, r: &RuleRow) -> Result<()> {
        self.conn().execute(
            "UPDATE elbv2_rules SET priority = ?2, conditions = ?3, actions = ?4 WHERE arn = ?1",
            params![r.arn, r.priority, r.conditions, r.actions],
        )?;
        Ok(())
    }

    pub fn rule_get(&self, arn: &str) -> Result<Option<RuleRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {RULE_COLS} FROM elbv2_rules WHERE arn = ?1"), [arn], rule)
            .optional()?)
    }

    /// A listener's rules by priority, the default rule last.
    pub fn rules(&self, listener_arn: &str) -> Result<Vec<RuleRow>> {
        self.all(
            &format!(
                "SELECT {RULE_COLS} FROM elbv2_rules WHERE listener_arn = ?1 \
                 ORDER BY priority IS NULL, priority"
            ),
            [listener_arn],
            rule,
        )
    }

    /// Every rule of every listener.
    pub fn rules_all(&self) -> Result<Vec<RuleRow>> {
        self.all(
            &format!("SELECT {RULE_COLS} FROM elbv2_rules ORDER BY listener_arn, priority IS NULL, priority"),
            [],
            rule,
        )
    }

    pub fn rule_delete(&self, arn: &str) -> Result<()> {
        self.conn().execute("DELETE FROM elbv2_rules WHERE arn = ?1", [arn])?;
        self.conn().execute("DELETE FROM tags WHERE resource_arn = ?1", [arn])?;
        Ok(())
    }

    // ---- target groups

    pub fn tg_insert(&self, g: &TargetGroupRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO elbv2_target_groups({TG_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![g.arn, g.name, g.service_id, g.protocol, g.port, g.health_check, g.attributes, g.created_at],
        )?;
        Ok(())
    }

    pub fn tg_update(&self, g: &TargetGroupRow) -> Result<()> {
        self.conn().execute(
            "UPDATE elbv2_target_groups SET port = ?2, health_check = ?3, attributes = ?4 WHERE arn = ?1",
            params![g.arn, g.port, g.health_check, g.attributes],
        )?;
        Ok(())
    }

    pub fn tg_get(&self, arn: &str) -> Result<Option<TargetGroupRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {TG_COLS} FROM elbv2_target_groups WHERE arn = ?1"), [arn], tg)
            .optional()?)
    }

    /// Every target group, oldest first.
    pub fn tgs(&self) -> Result<Vec<TargetGroupRow>> {
        self.all(&format!("SELECT {TG_COLS} FROM elbv2_target_groups ORDER BY created_at, arn"), [], tg)
    }

    /// Deletes a target group with its registered targets, its tags and the revisions that pointed at it.
    pub fn tg_delete(&self, arn: &str) -> Result<()> {
        self.conn().execute("DELETE FROM elbv2_target_groups WHERE arn = ?1", [arn])?;
        self.conn().execute("DELETE FROM elbv2_revision_groups WHERE target_group_arn = ?1", [arn])?;
        self.conn().execute("DELETE FROM tags WHERE resource_arn = ?1", [arn])?;
        Ok(())
    }

    /// Registers a target (idempotent).
    pub fn target_register(&self, tg_arn: &str, id: &str, port: u16) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO elbv2_targets(target_group_arn, id, port) VALUES (?1, ?2, ?3)",
            params![tg_arn, id, port],
        )?;
        Ok(())
    }

    /// Deregisters a target; returns whether it was registered.
    pub fn target_deregister(&self, tg_arn: &str, id: &str, port: u16) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM elbv2_targets WHERE target_group_arn = ?1 AND id = ?2 AND port = ?3",
            params![tg_arn, id, port],
        )?;
        Ok(n > 0)
    }

    /// Targets registered by hand: (target group, id, port).
    pub fn targets_registered(&self) -> Result<Vec<(String, String, u16)>> {
        self.all("SELECT target_group_arn, id, port FROM elbv2_targets ORDER BY target_group_arn, id, port", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
    }

    // ---- placements and revision groups

    pub fn placement_insert(&self, p: &PlacementRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO elbv2_placements(service_id, load_balancer_arn, group_a, group_b) VALUES (?1, ?2, ?3, ?4)",
            params![p.service_id, p.load_balancer_arn, p.group_a, p.group_b],
        )?;
        Ok(())
    }

    pub fn placement_get(&self, service_id: i64) -> Result<Option<PlacementRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT service_id, load_balancer_arn, group_a, group_b FROM elbv2_placements WHERE service_id = ?1",
                [service_id],
                placement,
            )
            .optional()?)
    }

    pub fn placements(&self) -> Result<Vec<PlacementRow>> {
        self.all(
            "SELECT service_id, load_balancer_arn, group_a, group_b FROM elbv2_placements ORDER BY service_id",
            [],
            placement,
        )
    }

    pub fn placement_delete(&self, service_id: i64) -> Result<()> {
        self.conn().execute("DELETE FROM elbv2_placements WHERE service_id = ?1", [service_id])?;
        Ok(())
    }

    pub fn revision_group_set(&self, revision_arn: &str, tg_arn: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO elbv2_revision_groups(revision_arn, target_group_arn) VALUES (?1, ?2) \
             ON CONFLICT(revision_arn) DO UPDATE SET target_group_arn = excluded.target_group_arn",
            params![revision_arn, tg_arn],
        )?;
        Ok(())
    }

    /// Every revision's target group.
    pub fn revision_groups(&self) -> Result<Vec<(String, String)>> {
        self.all("SELECT revision_arn, target_group_arn FROM elbv2_revision_groups", [], |r| Ok((r.get(0)?, r.get(1)?)))
    }

    pub fn revision_group(&self, revision_arn: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT target_group_arn FROM elbv2_revision_groups WHERE revision_arn = ?1",
                [revision_arn],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn lb_row(arn: &str, at: f64) -> LoadBalancerRow {
        LoadBalancerRow {
            arn: arn.into(),
            name: format!("name-{arn}"),
            scheme: "internet-facing".into(),
            dns_name: "d".into(),
            attributes: "{}".into(),
            created_at: at,
        }
    }

    fn rule_row(arn: &str, listener: &str, priority: Option<u32>) -> RuleRow {
        RuleRow {
            arn: arn.into(),
            listener_arn: listener.into(),
            priority,
            conditions: "[]".into(),
            actions: "[]".into(),
            service_id: None,
        }
    }

    #[test]
    fn rules_order_unique_priorities_and_cascade() {
        let mut store = Store::open_in_memory().expect("store");
        store
            .tx(|tx| {
                tx.lb_insert(&lb_row("lb2", 2.0))?;
                tx.lb_insert(&lb_row("lb1", 1.0))?;
                assert_eq!(tx.lbs()?.iter().map(|l| l.arn.as_str()).collect::<Vec<_>>(), vec!["lb1", "lb2"]);
                tx.listener_insert(&ListenerRow {
                    arn: "l1".into(),
                    load_balancer_arn: "lb1".into(),
                    port: 443,
                    protocol: "HTTPS".into(),
                    default_actions: "[]".into(),
                })?;
                tx.listener_certificate_add(&ListenerCertificateRow {
                    listener_arn: "l1".into(),
                    certificate_arn: "c".into(),
                    host: "h".into(),
                    is_default: false,
                })?;
                tx.rule_insert(&rule_row("default", "l1", None))?;
                tx.rule_insert(&rule_row("r5", "l1", Some(5)))?;
                tx.rule_insert(&rule_row("r1", "l1", Some(1)))?;
                assert!(tx.rule_insert(&rule_row("dup", "l1", Some(5))).is_err(), "one rule per priority");
                let order: Vec<String> = tx.rules("l1")?.into_iter().map(|r| r.arn).collect();
                assert_eq!(order, vec!["r1", "r5", "default"], "by priority, the default rule last");
                tx.tags_put("r1", &[("k".into(), "v".into())])?;
                tx.lb_delete("lb1")?;
                assert!(tx.listener_get("l1")?.is_none() && tx.rule_get("r1")?.is_none());
                assert!(tx.listener_certificates("l1")?.is_empty());
                assert!(tx.tags_get("r1")?.is_empty(), "tags of deleted rules go too");
                Ok::<_, crate::StoreError>(())
            })
            .expect("tx");
    }

    #[test]
    fn target_groups_targets_and_revision_groups() {
        let mut store = Store::open_in_memory().expect("store");
        store
            .tx(|tx| {
                tx.tg_insert(&TargetGroupRow {
                    arn: "tg".into(),
                    name: "n".into(),
                    service_id: Some(1),
                    protocol: "HTTP".into(),
                    port: 80,
                    health_check: "{}".into(),
                    attributes: "{}".into(),
                    created_at: 1.0,
                })?;
                tx.target_register("tg", "10.0.0.1", 80)?;
                tx.target_register("tg", "10.0.0.1", 80)?;
                assert_eq!(tx.targets_registered()?.len(), 1, "registering twice is one target");
                assert!(tx.target_deregister("tg", "10.0.0.1", 80)?);
                assert!(!tx.target_deregister("tg", "10.0.0.1", 80)?);
                tx.revision_group_set("rev", "tg")?;
                assert_eq!(tx.revision_group("rev")?.as_deref(), Some("tg"));
                tx.target_register("tg", "10.0.0.2", 8080)?;
                tx.tg_delete("tg")?;
                assert!(tx.revision_group("rev")?.is_none() && tx.targets_registered()?.is_empty());
                Ok::<_, crate::StoreError>(())
            })
            .expect("tx");
    }
}
