//! Fargate task sizes: which cpu/memory pairs are valid, parsed from the forms ECS accepts.

use crate::error::AwsError;

/// A validated task size in ECS units: cpu in 1/1024 vCPU, memory in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSize {
    pub cpu: u32,
    pub memory_mib: u32,
}

/// berth's defaults (the API model's documented defaults).
pub const DEFAULT_CPU: u32 = 256;
pub const DEFAULT_MEMORY_MIB: u32 = 512;

/// The valid memory values (MiB) for each Fargate cpu value, as (cpu, min, max, step).
const FARGATE: &[(u32, u32, u32, u32)] = &[
    (256, 512, 2048, 512),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122880, 8192),
];

/// Parses cpu as ECS does: `"256"` (units) or `"0.25 vCPU"` / `"1 vcpu"`.
pub fn parse_cpu(s: &str) -> Option<u32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u32>() {
        return Some(n);
    }
    let lower = t.to_ascii_lowercase();
    let num = lower.strip_suffix("vcpu")?.trim();
    let v: f64 = num.parse().ok()?;
    let units = v * 1024.0;
    (units.fract() == 0.0 && units > 0.0 && units <= f64::from(u32::MAX)).then_some(units as u32)
}

/// Parses memory as ECS does: `"512"` (MiB) or `"2 GB"` / `"0.5gb"`.
pub fn parse_memory(s: &str) -> Option<u32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u32>() {
        return Some(n);
    }
    let lower = t.to_ascii_lowercase();
    let num = lower.strip_suffix("gb")?.trim();
    let v: f64 = num.parse().ok()?;
    let mib = v * 1024.0;
    (mib.fract() == 0.0 && mib > 0.0 && mib <= f64::from(u32::MAX)).then_some(mib as u32)
}

/// Validates a cpu/memory pair against Fargate's table, with a message that says what would be valid.
pub fn validate(cpu: Option<&str>, memory: Option<&str>) -> Result<TaskSize, AwsError> {
    let cpu = match cpu {
        None => DEFAULT_CPU,
        Some(s) => parse_cpu(s).ok_or_else(|| {
            AwsError::invalid_parameter(format!(
                "Invalid 'cpu' setting '{s}'. Specify CPU units (256, 512, 1024, 2048, 4096, 8192, 16384) or vCPU (e.g. '1 vCPU')."
            ))
        })?,
    };
    let Some(&(_, min, max, step)) = FARGATE.iter().find(|r| r.0 == cpu) else {
        return Err(AwsError::invalid_parameter(format!(
            "No Fargate configuration exists for given values: cpu {cpu}, memory {}. \
             Valid cpu values are 256, 512, 1024, 2048, 4096, 8192 and 16384 (units of 1/1024 vCPU).",
            memory.unwrap_or("(default)")
        )));
    };
    let memory = match memory {
        None if cpu == DEFAULT_CPU => DEFAULT_MEMORY_MIB,
        None => min,
        Some(s) => parse_memory(s).ok_or_else(|| {
            AwsError::invalid_parameter(format!(
                "Invalid 'memory' setting '{s}'. Specify memory in MiB (e.g. 512) or GB (e.g. '2 GB')."
            ))
        })?,
    };
    // 0.25 vCPU takes 0.5, 1 or 2 GB: the one row whose values are not an even series (1536 is not valid).
    let off_series = cpu == 256 && memory == 1536;
    if memory < min || memory > max || (memory - min) % step != 0 || off_series {
        let valid = if cpu == 256 {
            "between 512 and 2048 MiB: 512, 1024 or 2048".to_string()
        } else {
            format!("between {min} and {max} MiB in increments of {step} MiB")
        };
        return Err(AwsError::invalid_parameter(format!(
            "No Fargate configuration exists for given values: cpu {cpu}, memory {memory}. \
             With cpu {cpu}, memory must be {valid}."
        )));
    }
    Ok(TaskSize { cpu, memory_mib: memory })
}

impl TaskSize {
    /// Docker's `NanoCpus` for this size.
    pub fn nano_cpus(self) -> i64 {
        i64::from(self.cpu) * 1_000_000_000 / 1024
    }
    /// The memory limit in bytes.
    pub fn memory_bytes(self) -> i64 {
        i64::from(self.memory_mib) * 1024 * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_pairs() {
        let ok = [
            (None, None, 256, 512),
            (Some("256"), Some("2048"), 256, 2048),
            (Some("512"), Some("1024"), 512, 1024),
            (Some("1 vCPU"), Some("2 GB"), 1024, 2048),
            (Some("0.25 vcpu"), Some("0.5GB"), 256, 512),
            (Some("4096"), Some("30720"), 4096, 30720),
            (Some("16384"), Some("122880"), 16384, 122880),
            (Some("1024"), None, 1024, 2048),
        ];
        for (c, m, wc, wm) in ok {
            assert_eq!(validate(c, m), Ok(TaskSize { cpu: wc, memory_mib: wm }), "{c:?} {m:?}");
        }
        let bad = [
            (Some("300"), Some("512")),
            (Some("256"), Some("4096")),
            (Some("512"), Some("1536")),
            (Some("256"), Some("1536")),
            (Some("8192"), Some("18432")),
            (Some("lots"), None),
            (Some("256"), Some("-1")),
            (Some("0 vcpu"), None),
        ];
        for (c, m) in bad {
            let e = validate(c, m).expect_err("must fail");
            assert_eq!(e.code, crate::ErrorCode::InvalidParameter);
        }
    }

    #[test]
    fn error_says_what_is_valid() {
        let e = validate(Some("256"), Some("4096")).expect_err("invalid");
        assert!(e.message.contains("between 512 and 2048 MiB: 512, 1024 or 2048"), "{}", e.message);
        let e = validate(Some("512"), Some("8192")).expect_err("invalid");
        assert!(e.message.contains("between 1024 and 4096 MiB in increments of 1024"), "{}", e.message);
    }

    #[test]
    fn docker_limits() {
        let s = TaskSize { cpu: 256, memory_mib: 512 };
        assert_eq!(s.nano_cpus(), 250_000_000);
        assert_eq!(s.memory_bytes(), 512 * 1024 * 1024);
    }
}
