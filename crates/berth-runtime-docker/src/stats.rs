//! Task resource usage read the way cAdvisor reads it: straight from each container's cgroup files, found from
//! the container's id and Docker's cgroup driver and version (`docker info`), with Docker's stats API (one-shot)
//! only as the fallback for a container whose cgroup cannot be read.
//!
//! | cgroup | CPU (cumulative)            | memory working set                                   |
//! |--------|-----------------------------|------------------------------------------------------|
//! | v2     | `cpu.stat` `usage_usec`     | `memory.current` − `memory.stat` `inactive_file`      |
//! | v1     | `cpuacct.usage` (ns)        | `memory.usage_in_bytes` − `memory.stat` `total_inactive_file` |
//!
//! A container's directory below the hierarchy's mount: `docker/<id>` with the `cgroupfs` driver,
//! `system.slice/docker-<id>.scope` with `systemd`. The parsing is pure (tested on file contents); the reads run
//! on a blocking thread, one batch per call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use berth_runtime::{DriverError, TaskStats};
use bollard::Docker;
use bollard::models::{SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum};
use bollard::query_parameters::{InspectContainerOptions, StatsOptions};
use futures_util::StreamExt;

/// Which cgroup files hold a container's usage on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The unified hierarchy, mounted at `root`.
    V2 { root: PathBuf, systemd: bool },
    /// Separate `cpuacct` and `memory` hierarchies (they may be one mount, `cpu,cpuacct`).
    V1 { cpuacct: PathBuf, memory: PathBuf, systemd: bool },
    /// No readable cgroup hierarchy: every reading goes through the stats API.
    None,
}

impl Layout {
    /// The layout for Docker's `cgroup_version` (`"1"`/`"2"`) and driver (`systemd` or not), from the mount table
    /// (`/proc/self/mounts`).
    pub fn detect(mounts: &str, version_2: bool, systemd: bool) -> Layout {
        let mut v2 = None;
        let (mut cpuacct, mut memory) = (None, None);
        for line in mounts.lines() {
            let mut fields = line.split_whitespace();
            let (Some(_), Some(path), Some(kind), Some(options)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let path = unescape_mount(path);
            match kind {
                "cgroup2" if v2.is_none() => v2 = Some(PathBuf::from(path)),
                "cgroup" => {
                    let opts: Vec<&str> = options.split(',').collect();
                    if opts.contains(&"cpuacct") && cpuacct.is_none() {
                        cpuacct = Some(PathBuf::from(&path));
                    }
                    if opts.contains(&"memory") && memory.is_none() {
                        memory = Some(PathBuf::from(&path));
                    }
                }
                _ => {}
            }
        }
        match (version_2, v2, cpuacct, memory) {
            (true, Some(root), _, _) => Layout::V2 { root, systemd },
            (false, _, Some(cpuacct), Some(memory)) => Layout::V1 { cpuacct, memory, systemd },
            _ => Layout::None,
        }
    }

    /// Reads one container's usage from its cgroup files.
    pub fn read(&self, container_id: &str) -> std::io::Result<(u64, u64)> {
        match self {
            Layout::V2 { root, systemd } => {
                let dir = root.join(container_dir(*systemd, container_id));
                let cpu_ns = key_value(&read(&dir.join("cpu.stat"))?, "usage_usec").map(|us| us.saturating_mul(1000));
                let current = number(&read(&dir.join("memory.current"))?);
                let inactive = key_value(&read(&dir.join("memory.stat"))?, "inactive_file").unwrap_or(0);
                match (cpu_ns, current) {
                    (Some(cpu), Some(mem)) => Ok((cpu, mem.saturating_sub(inactive))),
                    _ => Err(invalid(&dir)),
                }
            }
            Layout::V1 { cpuacct, memory, systemd } => {
                let rel = container_dir(*systemd, container_id);
                let (cpu_dir, mem_dir) = (cpuacct.join(&rel), memory.join(&rel));
                let cpu_ns = number(&read(&cpu_dir.join("cpuacct.usage"))?);
                let usage = number(&read(&mem_dir.join("memory.usage_in_bytes"))?);
                let inactive = key_value(&read(&mem_dir.join("memory.stat"))?, "total_inactive_file").unwrap_or(0);
                match (cpu_ns, usage) {
                    (Some(cpu), Some(mem)) => Ok((cpu, mem.saturating_sub(inactive))),
                    _ => Err(invalid(&cpu_dir)),
                }
            }
            Layout::None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no cgroup hierarchy")),
        }
    }
}

/// A container's cgroup directory, relative to the hierarchy's mount.
pub fn container_dir(systemd: bool, container_id: &str) -> String {
    if systemd { format!("system.slice/docker-{container_id}.scope") } else { format!("docker/{container_id}") }
}

/// `/proc/mounts` escapes spaces and the like as octal (`\040`).
fn unescape_mount(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && let Ok(v) = u8::from_str_radix(&path[i + 1..i + 4], 8)
        {
            out.push(char::from(v));
            i += 4;
            continue;
        }
        out.push(char::from(bytes[i]));
        i += 1;
    }
    out
}

fn read(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

fn invalid(dir: &Path) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unreadable cgroup files in {}", dir.display()))
}

/// A file holding one number (`cpuacct.usage`, `memory.current`).
pub fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The value of `key` in a `key value` per line file (`cpu.stat`, `memory.stat`).
pub fn key_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The working set as the stats API reports it (the same subtraction `docker stats` does).
fn api_working_set(usage: u64, stats: &HashMap<String, u64>) -> u64 {
    let inactive = stats.get("total_inactive_file").or_else(|| stats.get("inactive_file")).copied().unwrap_or(0);
    usage.saturating_sub(inactive)
}

/// The cgroup reader of one driver: the layout (found once) and each task's container id.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    layout: tokio::sync::OnceCell<Layout>,
    /// task id → full container id of its running container.
    ids: Mutex<HashMap<String, String>>,
}

impl Sampler {
    async fn layout(&self, docker: &Docker) -> &Layout {
        self.layout
            .get_or_init(|| async {
                // Without `docker info` every reading goes through the stats API.
                let Ok(info) = docker.info().await else { return Layout::None };
                let version_2 = info.cgroup_version == Some(SystemInfoCgroupVersionEnum::_2);
                let systemd = info.cgroup_driver == Some(SystemInfoCgroupDriverEnum::SYSTEMD);
                let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
                Layout::detect(&mounts, version_2, systemd)
            })
            .await
    }

    /// The usage of each running task of `task_ids`.
    pub async fn stats(&self, docker: &Docker, task_ids: &[String]) -> Result<Vec<TaskStats>, DriverError> {
        let layout = self.layout(docker).await.clone();
        // The container ids not known yet (or whose cgroup went away) come from an inspect.
        let known: HashMap<String, String> = {
            let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
            ids.retain(|task, _| task_ids.contains(task));
            ids.clone()
        };
        let mut ids = Vec::with_capacity(task_ids.len());
        for task in task_ids {
            match known.get(task) {
                Some(id) => ids.push((task.clone(), id.clone())),
                None => {
                    if let Some(id) = running_id(docker, task).await? {
                        ids.push((task.clone(), id));
                    }
                }
            }
        }
        let read_layout = layout.clone();
        let batch = ids.clone();
        let read = tokio::task::spawn_blocking(move || {
            batch.into_iter().map(|(task, id)| (task, id.clone(), read_layout.read(&id))).collect::<Vec<_>>()
        })
        .await
        .map_err(|e| DriverError::Unavailable(format!("cgroup reader failed: {e}")))?;
        let mut out = Vec::with_capacity(read.len());
        let mut keep = HashMap::with_capacity(read.len());
        for (task, id, usage) in read {
            match usage {
                Ok((cpu_ns, memory_bytes)) => {
                    out.push(TaskStats { task_id: task.clone(), cpu_ns, memory_bytes, at: SystemTime::now() });
                    keep.insert(task, id);
                }
                // Stopped, or a cgroup this layout does not find: the stats API says whether it runs.
                Err(_) => {
                    if let Some(stats) = api_stats(docker, &task).await? {
                        out.push(stats);
                    }
                }
            }
        }
        *self.ids.lock().unwrap_or_else(|e| e.into_inner()) = keep;
        Ok(out)
    }
}

/// The full id of a task's container when it runs.
async fn running_id(docker: &Docker, task_id: &str) -> Result<Option<String>, DriverError> {
    let name = crate::container_name(task_id);
    match docker.inspect_container(&name, None::<InspectContainerOptions>).await {
        Ok(c) => Ok(c.id.filter(|_| c.state.and_then(|s| s.running) == Some(true))),
        Err(e) if crate::is_status(&e, 404) => Ok(None),
        Err(e) => Err(crate::other(e, DriverError::Unavailable)),
    }
}

/// One reading from Docker's stats API (one-shot): the fallback, and the baseline the benchmark compares with.
pub(crate) async fn api_stats(docker: &Docker, task_id: &str) -> Result<Option<TaskStats>, DriverError> {
    let name = crate::container_name(task_id);
    let options = StatsOptions { stream: false, one_shot: true };
    let mut stream = docker.stats(&name, Some(options));
    match stream.next().await {
        Some(Ok(s)) => {
            let cpu_ns = s.cpu_stats.and_then(|c| c.cpu_usage).and_then(|u| u.total_usage);
            let memory = s.memory_stats.and_then(|m| Some(api_working_set(m.usage?, &m.stats.unwrap_or_default())));
            // A stopped container answers with empty stats.
            Ok(match (cpu_ns, memory) {
                (Some(cpu_ns), Some(memory_bytes)) => {
                    Some(TaskStats { task_id: task_id.to_string(), cpu_ns, memory_bytes, at: SystemTime::now() })
                }
                _ => None,
            })
        }
        Some(Err(e)) if crate::is_status(&e, 404) => Ok(None),
        Some(Err(e)) => Err(crate::other(e, DriverError::Unavailable)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS_V1: &str = "\
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";
    const MOUNTS_V2: &str = "sysfs /sys sysfs rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec 0 0\n";

    #[test]
    fn layouts_from_mounts_and_driver() {
        let cases: &[(&str, bool, bool, Layout)] = &[
            (
                MOUNTS_V1,
                false,
                false,
                Layout::V1 {
                    cpuacct: "/sys/fs/cgroup/cpu,cpuacct".into(),
                    memory: "/sys/fs/cgroup/memory".into(),
                    systemd: false,
                },
            ),
            // Hybrid: Docker on v2 uses the unified mount.
            (MOUNTS_V1, true, true, Layout::V2 { root: "/sys/fs/cgroup/unified".into(), systemd: true }),
            (MOUNTS_V2, true, true, Layout::V2 { root: "/sys/fs/cgroup".into(), systemd: true }),
            (MOUNTS_V2, false, false, Layout::None),
            ("", true, false, Layout::None),
        ];
        for (mounts, v2, systemd, want) in cases {
            assert_eq!(&Layout::detect(mounts, *v2, *systemd), want, "v2={v2} systemd={systemd}");
        }
    }

    #[test]
    fn container_dirs_by_driver() {
        assert_eq!(container_dir(false, "abc"), "docker/abc");
        assert_eq!(container_dir(true, "abc"), "system.slice/docker-abc.scope");
    }

    #[test]
    fn parses_stat_files() {
        let cpu_stat = "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n";
        assert_eq!(key_value(cpu_stat, "usage_usec"), Some(123_456));
        assert_eq!(key_value(cpu_stat, "usage"), None, "whole keys only");
        let memory_stat = "cache 10\ninactive_file 4096\ntotal_inactive_file 8192\n";
        assert_eq!(key_value(memory_stat, "inactive_file"), Some(4096));
        assert_eq!(key_value(memory_stat, "total_inactive_file"), Some(8192));
        assert_eq!(number("24653726\n"), Some(24_653_726));
        assert_eq!(number("max\n"), None);
        assert_eq!(unescape_mount("/a\\040b"), "/a b");
    }

    #[test]
    fn reads_a_container_from_files() {
        let root = std::env::temp_dir().join(format!("berth-cgroup-test-{}", std::process::id()));
        let v2 = root.join("v2");
        let dir = v2.join("system.slice/docker-c1.scope");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("cpu.stat"), "usage_usec 2500\nuser_usec 2000\n").expect("write");
        std::fs::write(dir.join("memory.current"), "10000\n").expect("write");
        std::fs::write(dir.join("memory.stat"), "anon 6000\ninactive_file 3000\n").expect("write");
        let layout = Layout::V2 { root: v2, systemd: true };
        assert_eq!(layout.read("c1").expect("read"), (2_500_000, 7000));
        assert!(layout.read("gone").is_err());

        let cpu = root.join("v1cpu/docker/c2");
        let mem = root.join("v1mem/docker/c2");
        std::fs::create_dir_all(&cpu).expect("dir");
        std::fs::create_dir_all(&mem).expect("dir");
        std::fs::write(cpu.join("cpuacct.usage"), "987654321\n").expect("write");
        std::fs::write(mem.join("memory.usage_in_bytes"), "5000\n").expect("write");
        std::fs::write(mem.join("memory.stat"), "inactive_file 1\ntotal_inactive_file 6000\n").expect("write");
        let layout = Layout::V1 { cpuacct: root.join("v1cpu"), memory: root.join("v1mem"), systemd: false };
        assert_eq!(layout.read("c2").expect("read"), (987_654_321, 0), "inactive above usage saturates");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn api_working_set_subtracts_inactive_file() {
        let v1 = HashMap::from([("total_inactive_file".to_string(), 100)]);
        assert_eq!(api_working_set(1000, &v1), 900);
        let v2 = HashMap::from([("inactive_file".to_string(), 300)]);
        assert_eq!(api_working_set(1000, &v2), 700);
    }
}
