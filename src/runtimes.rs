//! The runtime catalog: which `spec.runtime` names run on which wasm
//! runtime. Pure; the host loads the runtime component it names.

/// How a Function runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// The source is itself a wasm module or component.
    Wasm,
    /// The source is code for an interpreter compiled to wasm.
    Source(Language),
}

/// A language with a wasm runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

    /// The extension of a handler's module file.
    pub fn extension(self) -> &'static str {
        match self {
            Language::Python => "py",
            Language::JavaScript => "js",
        }
    }
}

/// The runtime a `spec.runtime` name selects: `wasm`; `python`, `python3`,
/// `python3.x` or `python3.N`; `nodejs`, `nodejs1x`, `nodejs2x` or
/// `nodejsNN` (kubeless's names). Anything else is refused with what is
/// supported.
pub fn resolve(name: &str) -> Result<Runtime, String> {
    let name = name.trim();
    if name == crate::crd::WASM_RUNTIME {
        return Ok(Runtime::Wasm);
    }
    let python = name == "python"
        || name == "python3"
        || name == "python3.x"
        || name
            .strip_prefix("python3.")
            .is_some_and(|minor| minor.parse::<u32>().is_ok_and(|m| m >= 6));
    if python {
        return Ok(Runtime::Source(Language::Python));
    }
    if name.starts_with("python2") {
        return Err(format!(
            "`{name}`: Python 2 is not supported; use python3.x"
        ));
    }
    if is_node(name) {
        return Ok(Runtime::Source(Language::JavaScript));
    }
    Err(format!(
        "`{name}` is not a runtime here; supported: wasm, python3.x (python, python3, python3.N), nodejs (nodejs1x, nodejs2x, nodejsNN)"
    ))
}

/// `nodejs`, `javascript`, `nodejs1x`/`nodejs2x` (kubeless) or `nodejsNN`.
fn is_node(name: &str) -> bool {
    let Some(version) = name.strip_prefix("nodejs") else {
        return name == "javascript";
    };
    let digits = version.strip_suffix('x').unwrap_or(version);
    version.is_empty() || (!digits.is_empty() && digits.parse::<u32>().is_ok())
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
    fn kubeless_runtime_names_map_to_python() {
        for name in ["python", "python3", "python3.x", "python3.9", "python3.12"] {
            assert_eq!(
                resolve(name),
                Ok(Runtime::Source(Language::Python)),
                "{name}"
            );
        }
        assert_eq!(resolve("wasm"), Ok(Runtime::Wasm));
        assert!(
            resolve("python2.7")
                .expect_err("refused")
                .contains("Python 2")
        );
        for name in ["nodejs", "nodejs1x", "nodejs2x", "nodejs20", "javascript"] {
            assert_eq!(
                resolve(name),
                Ok(Runtime::Source(Language::JavaScript)),
                "{name}"
            );
        }
        assert!(resolve("nodejsx").is_err());
        assert!(
            resolve("ruby3.2")
                .expect_err("refused")
                .contains("supported")
        );
    }

    #[test]
    fn handlers_are_file_dot_function() {
        assert_eq!(split_handler("hello.handler"), Ok(("hello", "handler")));
        assert!(split_handler("handler").is_err());
        assert!(split_handler("../x.handler").is_err());
        assert!(split_handler("a.b.c").is_err());
    }
}
