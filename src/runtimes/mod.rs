//! Runtimes: the catalog of `spec.runtime` names (`catalog`), the one place
//! that decides whether a Function runs in wasm or on a container image
//! (`placement`), and the wasm language runtimes.

pub mod catalog;
pub mod embedded;
pub mod placement;

pub use catalog::{Catalog, RuntimeEntry};
pub use placement::{Dependencies, Path, Placement, Unplaceable, place};

/// A language with a wasm runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// CPython (componentize-py), `runtimes/python/`.
    Python,
    /// The Boa engine, `runtimes/js/`.
    JavaScript,
}

impl Language {
    /// The runtime component's file in the runtimes folder.
    pub fn component_file(self) -> &'static str {
        match self {
            Language::Python => "python.wasm",
            Language::JavaScript => "js.wasm",
        }
    }

    /// The language's name in file and container names.
    pub fn tag(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "javascript",
        }
    }

    /// The language's name in a sentence.
    pub fn title(self) -> &'static str {
        match self {
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
        }
    }

    /// The extension of a handler's module file.
    pub fn extension(self) -> &'static str {
        match self {
            Language::Python => "py",
            Language::JavaScript => "js",
        }
    }
}

/// Splits a kubeless handler, `file.function`, into the module and the
/// function names.
pub fn split_handler(handler: &str) -> Result<(&str, &str), String> {
    let (module, function) = handler
        .rsplit_once('.')
        .ok_or_else(|| format!("`{handler}` must be file.function, such as hello.handler"))?;
    let identifier = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !identifier(module) || !identifier(function) {
        return Err(format!(
            "`{handler}` must be file.function with plain names, such as hello.handler"
        ));
    }
    Ok((module, function))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_are_file_dot_function() {
        assert_eq!(split_handler("hello.handler"), Ok(("hello", "handler")));
        assert!(split_handler("handler").is_err());
        assert!(split_handler("../x.handler").is_err());
        assert!(split_handler("a.b.c").is_err());
    }
}
