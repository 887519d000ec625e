//! Each crate README's "Reading path" names, for each of the note's calls, the functions a reader
//! steps through from `main` to the call, each linked to its file. This test follows every path
//! through the source: each function exists in the file it links to, calls the next one, and a
//! path has at most 3 hops and the count its row prints. A rename or a new layer fails it.

use std::path::{Path, PathBuf};

const MAX_HOPS: usize = 3;
const CRATES: [&str; 5] = ["file-ipc", "pipe-ipc", "msgq-ipc", "shm-ipc", "signal-ipc"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// One step of a path: `[`SysvChannel::open`](src/sysv_chan.rs)`.
#[derive(Debug)]
struct Step {
    name: String,
    file: PathBuf,
}

/// The table rows of the README's "## Reading path" section: the note's call, the steps, the hops.
fn rows(readme: &Path) -> Vec<(String, Vec<Step>, usize)> {
    let text = std::fs::read_to_string(readme).unwrap();
    let start =
        text.find("\n## Reading path").unwrap_or_else(|| panic!("{}: no '## Reading path' section", readme.display()));
    let section = &text[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    let dir = readme.parent().unwrap();
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| the note")) {
        // Cells split on unescaped bars (`IPC_CREAT\|0666` stays in one cell).
        let cells: Vec<String> =
            line.replace("\\|", "\u{0}").split('|').map(|c| c.trim().replace('\u{0}', "|")).collect();
        let [_, call, path, hops, ..] = cells.as_slice() else { panic!("{}: bad row: {line}", readme.display()) };
        let steps = path
            .split('→')
            .map(|s| {
                let s = s.trim();
                let (name, link) = s
                    .strip_prefix("[`")
                    .and_then(|s| s.strip_suffix(')'))
                    .and_then(|s| s.split_once("`]("))
                    .unwrap_or_else(|| panic!("{}: a step is not [`name`](file): {s:?}", readme.display()));
                Step { name: name.to_string(), file: dir.join(link) }
            })
            .collect();
        let hops = hops.parse().unwrap_or_else(|_| panic!("{}: hops not a number: {line}", readme.display()));
        rows.push((call.clone(), steps, hops));
    }
    rows
}

/// The body of function `name` (`Type::method`, `module::function` or `function`) in `file`: from
/// its `fn` line to the closing brace at the same indentation. A method is looked for after the
/// first `impl` or `trait` line that names its type.
fn body(file: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let lines: Vec<&str> = text.lines().collect();
    let (owner, func) = match name.rsplit_once("::") {
        Some((owner, func)) if owner.starts_with(char::is_uppercase) => (Some(owner), func),
        Some((_module, func)) => (None, func),
        None => (None, name),
    };
    let from = match owner {
        Some(ty) => lines
            .iter()
            .position(|l| {
                let l = l.trim_start();
                (l.starts_with("impl") || l.contains("trait ")) && words(l).any(|w| w == ty)
            })
            .unwrap_or_else(|| panic!("{}: no impl or trait of {ty}", file.display())),
        None => 0,
    };
    let at = (from..lines.len())
        .find(|&i| {
            let l = lines[i];
            [format!("fn {func}("), format!("fn {func}<")].iter().any(|f| l.contains(f.as_str()))
        })
        .unwrap_or_else(|| panic!("{}: no fn {name}", file.display()));
    let indent = &lines[at][..lines[at].len() - lines[at].trim_start().len()];
    let end = (at..lines.len())
        .find(|&i| lines[i] == format!("{indent}}}"))
        .unwrap_or_else(|| panic!("{}: fn {name} has no end", file.display()));
    lines[at..=end].join("\n")
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty())
}

#[test]
fn every_note_call_is_at_most_three_hops_from_main_and_each_hop_is_real() {
    for krate in CRATES {
        let readme = workspace().join(krate).join("README.md");
        let rows = rows(&readme);
        assert!(rows.len() >= 2, "{krate}: the reading path lists {} calls", rows.len());
        for (call, steps, hops) in rows {
            let at = format!("{krate} README, {call}");
            assert_eq!(steps[0].name, "main", "{at}: a path starts at main");
            assert!(steps[0].file.starts_with(workspace().join(krate).join("src/bin")), "{at}: main of a bin");
            assert_eq!(hops, steps.len() - 1, "{at}: the hops printed are not the path's");
            assert!(hops <= MAX_HOPS, "{at}: {hops} hops from main");
            for pair in steps.windows(2) {
                let (caller, callee) = (&pair[0], &pair[1]);
                let short = callee.name.rsplit("::").next().unwrap_or(&callee.name);
                body(&callee.file, &callee.name); // it exists where its link points
                assert!(
                    words(&body(&caller.file, &caller.name)).any(|w| w == short),
                    "{at}: {} ({}) does not call {short}",
                    caller.name,
                    caller.file.display()
                );
            }
        }
    }
}
