//! EC2 rows: VPCs, subnets, security groups, their rules, tags on EC2 resource ids, and the groups each
//! service uses. Records only; what a rule means is decided by the control plane.

use rusqlite::{OptionalExtension, Row, params};

use crate::{Epoch, Result, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct VpcRow {
    pub id: String,
    pub cidr: String,
    pub is_default: bool,
    /// The runtime network that backs the VPC.
    pub network: String,
    pub created_at: Epoch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubnetRow {
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub cidr: String,
    /// False marks a private subnet.
    pub map_public_ip: bool,
    pub default_for_az: bool,
    pub created_at: Epoch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroupRow {
    pub id: String,
    pub vpc_id: String,
    pub name: String,
    pub description: String,
    pub owner_id: String,
    pub created_at: Epoch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroupRuleRow {
    pub id: String,
    pub group_id: String,
    pub egress: bool,
    /// `-1` (all), `tcp`, `udp`, `icmp`, `icmpv6` or a protocol number.
    pub protocol: String,
    /// -1 when the protocol has no ports.
    pub from_port: i32,
    pub to_port: i32,
    pub cidr_ipv4: Option<String>,
    pub cidr_ipv6: Option<String>,
    pub referenced_group_id: Option<String>,
    pub description: Option<String>,
}

/// How a service uses a security group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRole {
    /// Created by Express for the service's load balancer.
    LoadBalancer,
    /// Created by Express for the service's tasks.
    Service,
    /// Given by the user in `networkConfiguration.securityGroups`; attached to the tasks, never deleted.
    User,
}

impl GroupRole {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupRole::LoadBalancer => "load-balancer",
            GroupRole::Service => "service",
            GroupRole::User => "user",
        }
    }
    pub fn parse(s: &str) -> Option<GroupRole> {
        match s {
            "load-balancer" => Some(GroupRole::LoadBalancer),
            "service" => Some(GroupRole::Service),
            "user" => Some(GroupRole::User),
            _ => None,
        }
    }
    /// Whether berth created the group for the service (and so deletes it with the service).
    pub fn created(self) -> bool {
        !matches!(self, GroupRole::User)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceGroupRow {
    pub service_id: i64,
    pub group_id: String,
    pub role: GroupRole,
}

const VPC_COLS: &str = "id, cidr, is_default, network, created_at";
const SUBNET_COLS: &str = "id, vpc_id, availability_zone, cidr, map_public_ip, default_for_az, created_at";
const GROUP_COLS: &str = "id, vpc_id, name, description, owner_id, created_at";
const RULE_COLS: &str =
    "id, group_id, egress, protocol, from_port, to_port, cidr_ipv4, cidr_ipv6, referenced_group_id, description";

fn vpc_row(r: &Row<'_>) -> rusqlite::Result<VpcRow> {
    Ok(VpcRow { id: r.get(0)?, cidr: r.get(1)?, is_default: r.get(2)?, network: r.get(3)?, created_at: r.get(4)? })
}

fn subnet_row(r: &Row<'_>) -> rusqlite::Result<SubnetRow> {
    Ok(SubnetRow {
        id: r.get(0)?,
        vpc_id: r.get(1)?,
        availability_zone: r.get(2)?,
        cidr: r.get(3)?,
        map_public_ip: r.get(4)?,
        default_for_az: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn group_row(r: &Row<'_>) -> rusqlite::Result<SecurityGroupRow> {
    Ok(SecurityGroupRow {
        id: r.get(0)?,
        vpc_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        owner_id: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn rule_row(r: &Row<'_>) -> rusqlite::Result<SecurityGroupRuleRow> {
    Ok(SecurityGroupRuleRow {
        id: r.get(0)?,
        group_id: r.get(1)?,
        egress: r.get(2)?,
        protocol: r.get(3)?,
        from_port: r.get(4)?,
        to_port: r.get(5)?,
        cidr_ipv4: r.get(6)?,
        cidr_ipv6: r.get(7)?,
        referenced_group_id: r.get(8)?,
        description: r.get(9)?,
    })
}

fn service_group_row(r: &Row<'_>) -> rusqlite::Result<ServiceGroupRow> {
    let role: String = r.get(2)?;
    let role = GroupRole::parse(&role).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            2,
            rusqlite::types::Type::Text,
            Box::new(crate::StoreError::Corrupt(format!("group role {role}"))),
        )
    })?;
    Ok(ServiceGroupRow { service_id: r.get(0)?, group_id: r.get(1)?, role })
}

impl Tx<'_> {
    // ---- VPCs and subnets

    pub fn vpc_insert(&self, v: &VpcRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO ec2_vpcs(id, cidr, is_default, network, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![v.id, v.cidr, v.is_default, v.network, v.created_at],
        )?;
        Ok(())
    }

    pub fn vpc_set_cidr(&self, id: &str, cidr: &str) -> Result<()> {
        self.conn().execute("UPDATE ec2_vpcs SET cidr = ?2 WHERE id = ?1", params![id, cidr])?;
        Ok(())
    }

    pub fn vpcs(&self) -> Result<Vec<VpcRow>> {
        let mut st = self.conn().prepare(&format!("SELECT {VPC_COLS} FROM ec2_vpcs ORDER BY created_at, id"))?;
        let rows = st.query_map([], vpc_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn vpc_get(&self, id: &str) -> Result<Option<VpcRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {VPC_COLS} FROM ec2_vpcs WHERE id = ?1"), [id], vpc_row)
            .optional()?)
    }

    pub fn vpc_default(&self) -> Result<Option<VpcRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {VPC_COLS} FROM ec2_vpcs WHERE is_default = 1 LIMIT 1"), [], vpc_row)
            .optional()?)
    }

    pub fn subnet_insert(&self, s: &SubnetRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO ec2_subnets(id, vpc_id, availability_zone, cidr, map_public_ip, default_for_az, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![s.id, s.vpc_id, s.availability_zone, s.cidr, s.map_public_ip, s.default_for_az, s.created_at],
        )?;
        Ok(())
    }

    pub fn subnet_set_cidr(&self, id: &str, cidr: &str) -> Result<()> {
        self.conn().execute("UPDATE ec2_subnets SET cidr = ?2 WHERE id = ?1", params![id, cidr])?;
        Ok(())
    }

    pub fn subnets(&self) -> Result<Vec<SubnetRow>> {
        let mut st = self
            .conn()
            .prepare(&format!("SELECT {SUBNET_COLS} FROM ec2_subnets ORDER BY vpc_id, availability_zone, id"))?;
        let rows = st.query_map([], subnet_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn subnet_get(&self, id: &str) -> Result<Option<SubnetRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {SUBNET_COLS} FROM ec2_subnets WHERE id = ?1"), [id], subnet_row)
            .optional()?)
    }

    // ---- security groups

    pub fn security_group_insert(&self, g: &SecurityGroupRow) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO ec2_security_groups(id, vpc_id, name, description, owner_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![g.id, g.vpc_id, g.name, g.description, g.owner_id, g.created_at],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    crate::StoreError::Conflict(format!("security group {} in {}", g.name, g.vpc_id))
                }
                e => e.into(),
            })?;
        Ok(())
    }

    pub fn security_group_get(&self, id: &str) -> Result<Option<SecurityGroupRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {GROUP_COLS} FROM ec2_security_groups WHERE id = ?1"), [id], group_row)
            .optional()?)
    }

    pub fn security_group_by_name(&self, vpc_id: &str, name: &str) -> Result<Option<SecurityGroupRow>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {GROUP_COLS} FROM ec2_security_groups WHERE vpc_id = ?1 AND name = ?2"),
                [vpc_id, name],
                group_row,
            )
            .optional()?)
    }

    pub fn security_groups(&self) -> Result<Vec<SecurityGroupRow>> {
        let mut st =
            self.conn().prepare(&format!("SELECT {GROUP_COLS} FROM ec2_security_groups ORDER BY created_at, id"))?;
        let rows = st.query_map([], group_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes the group with its rules, tags and service attachments.
    pub fn security_group_delete(&self, id: &str) -> Result<()> {
        self.conn().execute("DELETE FROM ec2_security_group_rules WHERE group_id = ?1", [id])?;
        self.conn().execute("DELETE FROM ec2_service_groups WHERE group_id = ?1", [id])?;
        self.conn().execute("DELETE FROM ec2_tags WHERE resource_id = ?1", [id])?;
        self.conn().execute("DELETE FROM ec2_security_groups WHERE id = ?1", [id])?;
        Ok(())
    }

    // ---- rules

    /// Appends a rule (rules keep their insertion order).
    pub fn security_group_rule_insert(&self, r: &SecurityGroupRuleRow) -> Result<()> {
        let seq = self.next_counter("ec2_rule_seq")? as i64;
        self.conn().execute(
            &format!(
                "INSERT INTO ec2_security_group_rules({RULE_COLS}, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            params![
                r.id,
                r.group_id,
                r.egress,
                r.protocol,
                r.from_port,
                r.to_port,
                r.cidr_ipv4,
                r.cidr_ipv6,
                r.referenced_group_id,
                r.description,
                seq
            ],
        )?;
        Ok(())
    }

    pub fn security_group_rule_delete(&self, id: &str) -> Result<()> {
        self.conn().execute("DELETE FROM ec2_security_group_rules WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Every rule of every group, in insertion order.
    pub fn security_group_rules_all(&self) -> Result<Vec<SecurityGroupRuleRow>> {
        let mut st = self.conn().prepare(&format!("SELECT {RULE_COLS} FROM ec2_security_group_rules ORDER BY seq"))?;
        let rows = st.query_map([], rule_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn security_group_rules(&self, group_id: &str) -> Result<Vec<SecurityGroupRuleRow>> {
        let mut st = self
            .conn()
            .prepare(&format!("SELECT {RULE_COLS} FROM ec2_security_group_rules WHERE group_id = ?1 ORDER BY seq"))?;
        let rows = st.query_map([group_id], rule_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The groups (other than `group_id` itself) whose rules reference `group_id`.
    pub fn security_groups_referencing(&self, group_id: &str) -> Result<Vec<String>> {
        let mut st = self.conn().prepare(
            "SELECT DISTINCT group_id FROM ec2_security_group_rules \
             WHERE referenced_group_id = ?1 AND group_id <> ?1 ORDER BY group_id",
        )?;
        let rows = st.query_map([group_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- tags on EC2 ids

    pub fn ec2_tags_put(&self, resource_id: &str, tags: &[(String, String)]) -> Result<()> {
        for (k, v) in tags {
            self.conn().execute(
                "INSERT INTO ec2_tags(resource_id, key, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(resource_id, key) DO UPDATE SET value = excluded.value",
                params![resource_id, k, v],
            )?;
        }
        Ok(())
    }

    pub fn ec2_tags_get(&self, resource_id: &str) -> Result<Vec<(String, String)>> {
        let mut st = self.conn().prepare("SELECT key, value FROM ec2_tags WHERE resource_id = ?1 ORDER BY key")?;
        let rows = st.query_map([resource_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every tag of every EC2 resource: (resource id, key, value).
    pub fn ec2_tags_all(&self) -> Result<Vec<(String, String, String)>> {
        let mut st = self.conn().prepare("SELECT resource_id, key, value FROM ec2_tags ORDER BY resource_id, key")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- which groups each service uses

    pub fn service_group_put(&self, g: &ServiceGroupRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO ec2_service_groups(service_id, group_id, role) VALUES (?1, ?2, ?3) \
             ON CONFLICT(service_id, group_id) DO UPDATE SET role = excluded.role",
            params![g.service_id, g.group_id, g.role.as_str()],
        )?;
        Ok(())
    }

    pub fn service_group_remove(&self, service_id: i64, group_id: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM ec2_service_groups WHERE service_id = ?1 AND group_id = ?2",
            params![service_id, group_id],
        )?;
        Ok(())
    }

    pub fn service_groups(&self, service_id: i64) -> Result<Vec<ServiceGroupRow>> {
        let mut st = self.conn().prepare(
            "SELECT service_id, group_id, role FROM ec2_service_groups WHERE service_id = ?1 ORDER BY rowid",
        )?;
        let rows = st.query_map([service_id], service_group_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn service_groups_all(&self) -> Result<Vec<ServiceGroupRow>> {
        let mut st = self.conn().prepare("SELECT service_id, group_id, role FROM ec2_service_groups ORDER BY rowid")?;
        let rows = st.query_map([], service_group_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
