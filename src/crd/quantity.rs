//! Kubernetes-style quantities for memory and kubeless-style timeouts.

use std::time::Duration;

/// Parses a memory quantity such as `128Mi`, `1Gi`, `500M` or `1048576` into
/// bytes, as Kubernetes resource quantities are written.
///
/// ```
/// use wasmless::crd::parse_memory;
/// assert_eq!(parse_memory("128Mi"), Ok(128 << 20));
/// assert_eq!(parse_memory("1G"), Ok(1_000_000_000));
/// assert!(parse_memory("lots").is_err());
/// ```
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let multiplier: u64 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => {
            return Err(format!(
                "`{text}` is not a memory quantity: use a number with an optional suffix Ki, Mi, Gi, k, M or G (for example 128Mi)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a memory quantity (for example 128Mi)"))?;
    let bytes = value * multiplier as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{text}` is out of range for a memory limit"));
    }
    Ok(bytes as u64)
}

/// Parses a timeout: a plain number of seconds as kubeless wrote it (`"180"`,
/// `2.5`) or a duration with a unit (`500ms`, `3s`, `2m`).
///
/// ```
/// use std::time::Duration;
/// use wasmless::crd::parse_duration;
/// assert_eq!(parse_duration("180"), Ok(Duration::from_secs(180)));
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds < 1e9 => {
            Duration::from_secs_f64(seconds)
        }
        Ok(_) => return Err(format!("`{text}` must be a positive number of seconds")),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            format!("`{text}` is not a duration ({e}); use seconds (`30`) or a unit (`500ms`, `3s`, `2m`)")
        })?,
    };
    if duration.is_zero() {
        return Err(format!("`{text}` must be longer than zero"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities_follow_kubernetes_suffixes() {
        assert_eq!(parse_memory("128Mi"), Ok(128 << 20));
        assert_eq!(parse_memory("1Gi"), Ok(1 << 30));
        assert_eq!(parse_memory("500M"), Ok(500_000_000));
        assert_eq!(parse_memory("65536"), Ok(65536));
        assert_eq!(parse_memory("0.5Gi"), Ok(1 << 29));
        assert!(parse_memory("12 apples").is_err());
        assert!(parse_memory("0").is_err());
        assert!(parse_memory("").is_err());
    }

    #[test]
    fn timeouts_accept_kubeless_seconds_and_units() {
        assert_eq!(parse_duration("180"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
