//! Platforms (`linux/arm64/v8`) and which ones a host can run.
//!
//! Matching is by compatibility, not equality: `arm64` is `arm64/v8`; an
//! `arm/v7` host runs `arm/v6` and `arm/v5`; an `amd64` host runs `386` only
//! when [`Platform::allow_386_on_amd64`] asks for it. The best match is the one
//! closest to the wanted variant.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// An operating system, architecture and optional variant and OS version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// `linux`, `windows`, ….
    pub os: String,
    /// `amd64`, `arm64`, `arm`, `386`, `s390x`, ….
    pub architecture: String,
    /// `v8`, `v7`, …, when the architecture has variants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The OS version (Windows images use it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// Whether an amd64 host also accepts 386 images.
    #[serde(skip)]
    pub allow_386_on_amd64: bool,
}

impl Platform {
    /// A platform from its parts, normalised (`aarch64` → `arm64`, `x86_64` → `amd64`).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        let (architecture, variant) = normalise(architecture, variant);
        Self {
            os: os.to_ascii_lowercase(),
            architecture,
            variant,
            os_version: None,
            allow_386_on_amd64: false,
        }
    }

    /// The platform of the running program (Linux on this architecture).
    pub fn host() -> Self {
        Self::new("linux", std::env::consts::ARCH, None)
    }

    /// The platform named in an OCI descriptor.
    pub fn from_oci(platform: &oci_spec::image::Platform) -> Self {
        let mut p = Self::new(
            &platform.os().to_string(),
            &platform.architecture().to_string(),
            platform.variant().as_deref(),
        );
        p.os_version = platform.os_version().clone();
        p
    }

    /// Whether a host of platform `self` can run an image built for `image`.
    pub fn runs(&self, image: &Platform) -> bool {
        if self.os != image.os {
            return false;
        }
        if self.architecture == image.architecture {
            return match (self.architecture.as_str(), &self.variant, &image.variant) {
                (_, None, _) | (_, _, None) => true,
                ("arm", Some(host), Some(img)) => arm_level(img) <= arm_level(host),
                (_, Some(host), Some(img)) => host == img,
            };
        }
        self.allow_386_on_amd64 && self.architecture == "amd64" && image.architecture == "386"
    }

    /// How well `image` fits `self`: lower is better; `None` when it cannot run.
    pub fn rank(&self, image: &Platform) -> Option<u32> {
        if !self.runs(image) {
            return None;
        }
        let arch = u32::from(self.architecture != image.architecture) * 100;
        let variant = match (&self.variant, &image.variant) {
            (Some(h), Some(i)) if h == i => 0,
            (Some(h), Some(i)) => arm_level(h).saturating_sub(arm_level(i)),
            (None, None) => 0,
            _ => 1,
        };
        Some(arch + variant)
    }
}

fn arm_level(variant: &str) -> u32 {
    variant
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn normalise(architecture: &str, variant: Option<&str>) -> (String, Option<String>) {
    let architecture = architecture.to_ascii_lowercase();
    let variant = variant
        .map(str::to_ascii_lowercase)
        .filter(|v| !v.is_empty());
    match architecture.as_str() {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.filter(|v| v != "v1")),
        "aarch64" | "arm64" => ("arm64".into(), variant.filter(|v| v != "v8")),
        "i386" | "i686" | "386" => ("386".into(), None),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => ("arm".into(), Some(variant.unwrap_or_else(|| "v7".into()))),
        _ => (architecture, variant),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self> {
        let parts: Vec<&str> = input.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(Error::InvalidPlatform {
                input: input.to_owned(),
            });
        }
        match parts.as_slice() {
            [os, arch] => Ok(Self::new(os, arch, None)),
            [os, arch, variant] => Ok(Self::new(os, arch, Some(variant))),
            _ => Err(Error::InvalidPlatform {
                input: input.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().expect("valid platform")
    }

    #[test]
    fn arm64_is_arm64_v8() {
        assert_eq!(p("linux/arm64/v8"), p("linux/arm64"));
        assert_eq!(p("linux/aarch64").to_string(), "linux/arm64");
        assert!(p("linux/arm64").runs(&p("linux/arm64/v8")));
    }

    #[test]
    fn arm_v7_runs_older_variants_only() {
        assert!(p("linux/arm/v7").runs(&p("linux/arm/v6")));
        assert!(p("linux/arm/v7").runs(&p("linux/arm/v5")));
        assert!(!p("linux/arm/v6").runs(&p("linux/arm/v7")));
        assert!(
            p("linux/arm/v7").rank(&p("linux/arm/v7")) < p("linux/arm/v7").rank(&p("linux/arm/v6"))
        );
    }

    #[test]
    fn amd64_runs_386_only_when_asked() {
        let mut host = p("linux/amd64");
        assert!(!host.runs(&p("linux/386")));
        host.allow_386_on_amd64 = true;
        assert!(host.runs(&p("linux/386")));
        assert!(host.rank(&p("linux/amd64")) < host.rank(&p("linux/386")));
        assert!(!host.runs(&p("windows/amd64")));
    }

    #[test]
    fn refuses_bad_platforms() {
        for bad in ["linux", "linux/", "a/b/c/d", "/amd64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }
}
