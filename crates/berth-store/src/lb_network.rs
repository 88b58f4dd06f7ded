//! Load balancer networking: the VPC each load balancer serves and the address it listens on by itself
//! (`None`: it shares the proxy's default sockets, or, for an internal one, its VPC's gateway side), plus the
//! subnet writes behind CreateSubnet, DeleteSubnet and ModifySubnetAttribute.

use rusqlite::{OptionalExtension, params};

use crate::{Result, Tx};

/// Where a load balancer lives and listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbNetworkRow {
    pub lb_arn: String,
    pub vpc_id: String,
    /// An address from the proxy's address pool this load balancer listens on by itself.
    pub address: Option<String>,
}

impl Tx<'_> {
    pub fn lb_network_put(&self, r: &LbNetworkRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO elbv2_lb_network(lb_arn, vpc_id, address) VALUES (?1, ?2, ?3) \
             ON CONFLICT(lb_arn) DO UPDATE SET vpc_id = excluded.vpc_id, address = excluded.address",
            params![r.lb_arn, r.vpc_id, r.address],
        )?;
        Ok(())
    }

    pub fn lb_network_get(&self, lb_arn: &str) -> Result<Option<LbNetworkRow>> {
        Ok(self
            .conn()
            .query_row("SELECT lb_arn, vpc_id, address FROM elbv2_lb_network WHERE lb_arn = ?1", [lb_arn], |r| {
                Ok(LbNetworkRow { lb_arn: r.get(0)?, vpc_id: r.get(1)?, address: r.get(2)? })
            })
            .optional()?)
    }

    pub fn lb_networks(&self) -> Result<Vec<LbNetworkRow>> {
        let mut st = self.conn().prepare("SELECT lb_arn, vpc_id, address FROM elbv2_lb_network ORDER BY lb_arn")?;
        let rows =
            st.query_map([], |r| Ok(LbNetworkRow { lb_arn: r.get(0)?, vpc_id: r.get(1)?, address: r.get(2)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn subnet_set_map_public_ip(&self, id: &str, on: bool) -> Result<()> {
        self.conn().execute("UPDATE ec2_subnets SET map_public_ip = ?2 WHERE id = ?1", params![id, on])?;
        Ok(())
    }

    /// Deletes a subnet and its tags.
    pub fn subnet_delete(&self, id: &str) -> Result<()> {
        self.conn().execute("DELETE FROM ec2_subnets WHERE id = ?1", [id])?;
        self.conn().execute("DELETE FROM ec2_tags WHERE resource_id = ?1", [id])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{LoadBalancerRow, Store};

    use super::*;

    #[test]
    fn network_rows_follow_their_load_balancer() {
        let mut store = Store::open_in_memory().expect("store");
        store
            .tx(|tx| -> Result<()> {
                tx.lb_insert(&LoadBalancerRow {
                    arn: "arn:lb".into(),
                    name: "lb".into(),
                    scheme: "internal".into(),
                    dns_name: "lb.example".into(),
                    attributes: "{}".into(),
                    created_at: 1.0,
                })?;
                let row = LbNetworkRow { lb_arn: "arn:lb".into(), vpc_id: "vpc-1".into(), address: None };
                tx.lb_network_put(&row)?;
                let moved = LbNetworkRow { address: Some("127.0.0.5".into()), ..row };
                tx.lb_network_put(&moved)?;
                assert_eq!(tx.lb_network_get("arn:lb")?, Some(moved));
                tx.lb_delete("arn:lb")?;
                assert!(tx.lb_networks()?.is_empty(), "deleted with its load balancer");
                Ok(())
            })
            .expect("tx");
    }
}
