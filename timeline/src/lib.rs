//! `timeline`: runs a writer/reader pair with `--trace --trace-time` on both sides and draws one
//! chart of the exchange (see timeline/README.md).

pub mod bins;
pub mod chart;
pub mod cli;
pub mod model;
pub mod objects;
pub mod parse;
pub mod run;
pub mod scenario;
pub mod svg;

use std::io::{IsTerminal, Write};

use common::{Error, Result, SysResult};

use crate::run::{Seen, Side};
use crate::scenario::{Place, Scenario};

/// The whole run: build the pair, run it at a place of its own, clean up, draw.
pub fn timeline(cli: cli::Cli) -> Result<()> {
    let s = Scenario::new(&cli.pair).map_err(Error::Usage)?;
    common::stop::install()?;
    let bins = bins::dir(s.package())?;
    let dir = match s.kind {
        scenario::Kind::Fifo | scenario::Kind::File => Some(objects::run_dir()?),
        _ => None,
    };
    let run_dir = dir.clone().unwrap_or_default();
    let place = s.place(&run_dir);
    let reader = bins.join("reader");
    let clean_args = clean_args(&place, s.kind);
    // A stop of timeline stops the pair (once), then removes what it left.
    let guard = {
        let (kind, place, run_dir, reader, clean_args) =
            (s.kind, place.clone(), run_dir.clone(), reader.clone(), clean_args.clone());
        common::stop::on_stop(move || {
            run::stop_children();
            if let Err(e) = objects::clean_up(kind, &place, &run_dir, &reader, &clean_args) {
                common::diag!("timeline: {e}");
            }
        })
    };
    let seen = run::run(&s, &place, &bins);
    let left = objects::clean_up(s.kind, &place, &run_dir, &reader, &clean_args);
    drop(guard);
    let seen = seen?;
    let left = left?;
    let mut failed = Vec::new();
    for x in &seen {
        if let Seen::End(side, _, status) = x {
            let stopped = *side == Side::Reader && s.run.stop_reader_after.is_some();
            if !status.success() && !stopped {
                failed.push(format!("the {} ended with {}", side.name(), run::ended(status)));
            }
        }
    }
    if !failed.is_empty() {
        // What the pair said, to see why.
        for x in &seen {
            if let Seen::Line(_, _, l) = x
                && parse::line(l).is_none()
            {
                common::diag!("{l}");
            }
        }
    }
    let chart = model::build(&s, s.object(&place), &seen);
    let mut text = chart::text(&chart, std::io::stdout().is_terminal());
    for line in chart.printed.lines() {
        text.push_str(&format!("reader printed: {line}\n"));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|_| Error::StdoutClosed)?;
    if let Some(path) = &s.run.svg {
        std::fs::write(path, svg::svg(&chart))
            .sys("write", path.display())
            .map_err(|e| e.hint("give --svg a path in a directory you can write"))?;
    }
    if !left.is_empty() {
        common::diag!("timeline: the pair left {}; removed", left.join(", "));
    }
    if failed.is_empty() { Ok(()) } else { Err(Error::Failed(failed.join("; "))) }
}

/// What the reader's `--clean` needs to find the pair's objects.
fn clean_args(place: &Place, kind: scenario::Kind) -> Vec<std::ffi::OsString> {
    let mut v = Vec::new();
    if let Place::Key(k) = place {
        v.extend(["--key".into(), k.to_string().into()]);
        if matches!(kind, scenario::Kind::MsgqPosix | scenario::Kind::ShmPosix) {
            v.push("--posix".into());
        }
    }
    v
}
