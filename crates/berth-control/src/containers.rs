//! The runtime actions on a task's container that must wait for its output: a task that ships its output is
//! halted, drained by its shipper (`log_shipping.rs`), then removed.

use std::sync::Arc;

use berth_runtime::DriverError;

use crate::Control;

impl Control {
    /// Stops a task's container: a task that ships its output is stopped, drained, then removed.
    pub(crate) async fn stop_container(self: &Arc<Self>, task_id: &str) -> Result<(), DriverError> {
        if !self.ships_output(task_id) {
            return self.driver.stop_task(task_id, self.config.stop_timeout).await;
        }
        self.driver.halt_task(task_id, self.config.stop_timeout).await?;
        self.drain_output(task_id).await;
        self.driver.remove_task(task_id).await
    }

    /// Removes an exited (or orphaned) task's container once its output is shipped.
    pub(crate) async fn remove_container(self: &Arc<Self>, task_id: &str) -> Result<(), DriverError> {
        if self.ships_output(task_id) {
            self.drain_output(task_id).await;
        }
        self.driver.remove_task(task_id).await
    }
}
