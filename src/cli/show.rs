//! How results are shown: `ls` lines and JSON, the `inspect` report, sizes and counts.

use flatten::vocabulary::quote::quote;

/// Sets `key` to `name`: the name itself when it is UTF-8; otherwise its quoted form, with
/// the exact bytes in `KEY_bytes` (base64), so that no two names come out alike.
pub(super) fn name_json(v: &mut serde_json::Value, key: &str, name: &[u8]) {
    use base64::Engine;
    match std::str::from_utf8(name) {
        Ok(s) => v[key] = s.into(),
        Err(_) => {
            v[key] = quote(name).into();
            v[format!("{key}_bytes")] = base64::engine::general_purpose::STANDARD
                .encode(name)
                .into();
        }
    }
}

/// One difference as JSON: `path`, `what` (its kind) and the two sides as `a` and `b`.
pub(super) fn difference_json(d: &flatten::snapshot::Difference) -> serde_json::Value {
    use flatten::snapshot::What;
    let mut v = serde_json::json!({ "what": d.what.name() });
    name_json(&mut v, "path", &[b"/", &d.path[..]].concat());
    let names = |x: &[Vec<u8>]| x.iter().map(|n| quote(n)).collect::<Vec<_>>();
    let group = |x: &Option<Vec<u8>>| x.as_ref().map(|p| format!("/{}", quote(p)));
    let (a, b): (serde_json::Value, serde_json::Value) = match &d.what {
        What::OnlyIn(side, kind) => {
            v["side"] = format!("{side:?}").into();
            v["type"] = (*kind).into();
            return v;
        }
        What::Type(a, b) => ((*a).into(), (*b).into()),
        What::Content(a, b) => ((*a).into(), (*b).into()),
        What::SymlinkTarget(a, b) => {
            name_json(&mut v, "a", a);
            name_json(&mut v, "b", b);
            return v;
        }
        What::Device(a, b) => (serde_json::json!([a.0, a.1]), serde_json::json!([b.0, b.1])),
        What::Mode(a, b) => (format!("{a:04o}").into(), format!("{b:04o}").into()),
        What::Owner(a, b) => (serde_json::json!([a.0, a.1]), serde_json::json!([b.0, b.1])),
        What::Mtime(a, b) => (a.to_string().into(), b.to_string().into()),
        What::Xattrs(a, b) => (names(a).into(), names(b).into()),
        What::XattrValues(n) => (names(n).into(), names(n).into()),
        What::Hardlinks(a, b) => (group(a).into(), group(b).into()),
        _ => (serde_json::Value::Null, serde_json::Value::Null),
    };
    v["a"] = a;
    v["b"] = b;
    v
}

pub(super) fn listed_type(e: &flatten::output::list::Listed) -> (&'static str, char) {
    use flatten::snapshot::NodeKind;
    match (&e.kind, &e.hardlink_to) {
        (_, Some(_)) => ("hardlink", 'h'),
        (NodeKind::File { .. }, _) => ("file", '-'),
        (NodeKind::Dir, _) => ("directory", 'd'),
        (NodeKind::Symlink(_), _) => ("symlink", 'l'),
        (NodeKind::CharDevice(..), _) => ("char", 'c'),
        (NodeKind::BlockDevice(..), _) => ("block", 'b'),
        (NodeKind::Fifo, _) => ("fifo", 'p'),
    }
}

/// `drwxr-xr-x 0/0        0 2024-01-02 03:04 etc/  [layer 0]`, like `tar -tv`.
pub(super) fn listed_line(e: &flatten::output::list::Listed) -> String {
    use flatten::snapshot::NodeKind;
    let m = e.meta.mode;
    let (_, t) = listed_type(e);
    let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
    let special = |x: u32, s: u32, lower: char, upper: char| match (m & x != 0, m & s != 0) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => 'x',
        (false, false) => '-',
    };
    let perms: String = [
        t,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(0o001, 0o1000, 't', 'T'),
    ]
    .iter()
    .collect();
    let size = match &e.kind {
        NodeKind::File { size, .. } if e.hardlink_to.is_none() => size.to_string(),
        NodeKind::CharDevice(a, b) | NodeKind::BlockDevice(a, b) => format!("{a},{b}"),
        _ => "0".to_owned(),
    };
    let mut name = quote(&e.path);
    if e.kind == NodeKind::Dir {
        name.push('/');
    }
    if let NodeKind::Symlink(t) = &e.kind {
        if e.hardlink_to.is_none() {
            name = format!("{name} -> {}", quote(t));
        }
    }
    if let Some(first) = &e.hardlink_to {
        name = format!("{name} link to {}", quote(first));
    }
    format!(
        "{perms} {}/{} {size:>9} {} {name}  [layer {}]",
        e.meta.uid,
        e.meta.gid,
        utc(e.meta.mtime.secs),
        e.layer + 1
    )
}

pub(super) fn listed_json(e: &flatten::output::list::Listed) -> serde_json::Value {
    use flatten::snapshot::NodeKind;
    let (kind, _) = listed_type(e);
    let mut v = serde_json::json!({
        "type": kind,
        "mode": format!("{:04o}", e.meta.mode),
        "uid": e.meta.uid,
        "gid": e.meta.gid,
        "mtime": e.meta.mtime.to_string(),
        "layer": e.layer + 1,
    });
    name_json(&mut v, "path", &[b"/", &e.path[..]].concat());
    match &e.kind {
        NodeKind::File { size, .. } => v["size"] = (*size).into(),
        NodeKind::Symlink(t) => name_json(&mut v, "target", t),
        NodeKind::CharDevice(a, b) | NodeKind::BlockDevice(a, b) => {
            v["device"] = serde_json::json!([a, b])
        }
        _ => {}
    }
    if let Some(first) = &e.hardlink_to {
        name_json(&mut v, "link_to", &[b"/", &first[..]].concat());
    }
    if !e.meta.xattrs.is_empty() {
        v["xattrs"] = e
            .meta
            .xattrs
            .iter()
            .map(|(k, _)| quote(k))
            .collect::<Vec<_>>()
            .into();
    }
    v
}

/// `YYYY-MM-DD HH:MM` in UTC (days-from-civil inverted, Howard Hinnant's algorithm).
pub(super) fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

pub(super) fn render_inspection(r: &flatten::inspect::Inspection) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let dash = |v: Option<&str>| {
        flatten::vocabulary::quote::printable(v.filter(|x| !x.is_empty()).unwrap_or("-"))
            .into_owned()
    };
    let list = |v: &Option<Vec<String>>| v.as_ref().map_or("-".to_owned(), |v| format!("{v:?}"));
    let names = if r.names.is_empty() {
        "-".to_owned()
    } else {
        flatten::vocabulary::quote::printable(&r.names.join(", ")).into_owned()
    };
    let _ = writeln!(s, "names:        {names}");
    let _ = writeln!(s, "format:       {}", r.format);
    if let Some(m) = &r.manifest_digest {
        let _ = writeln!(s, "manifest:     {m}");
    }
    let _ = writeln!(s, "config:       {}", r.config_digest);
    let platform: Vec<&str> = [&r.os, &r.architecture, &r.variant]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let _ = writeln!(s, "platform:     {}", dash(Some(&platform.join("/"))));
    let c = &r.config;
    let _ = writeln!(s, "entrypoint:   {}", list(&c.entrypoint));
    let _ = writeln!(s, "cmd:          {}", list(&c.cmd));
    let _ = writeln!(s, "workdir:      {}", dash(c.working_dir.as_deref()));
    let _ = writeln!(s, "user:         {}", dash(c.user.as_deref()));
    // Strings from the image's config are made printable, a newline included.
    use flatten::vocabulary::quote::printable as p;
    for e in c.env.iter().flatten() {
        let _ = writeln!(s, "env:          {}", p(e));
    }
    for port in c.exposed_ports.iter().flat_map(|m| m.keys()) {
        let _ = writeln!(s, "exposed port: {}", p(port));
    }
    for (k, v) in c.labels.iter().flatten() {
        let _ = writeln!(s, "label:        {}={}", p(k), p(v));
    }
    let _ = writeln!(s, "layers:");
    let _ = writeln!(
        s,
        "  #  {:<20} {:<20} {:<8} {:<11} {:>10} {:>10} {:>7} {:>9}",
        "digest",
        "diff_id",
        "verified",
        "compression",
        "compressed",
        "size",
        "entries",
        "whiteouts"
    );
    for l in &r.layers {
        let verified = match l.verified {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        let _ = writeln!(
            s,
            "  {:<2} {:<20} {:<20} {:<8} {:<11} {:>10} {:>10} {:>7} {:>9}",
            l.number,
            flatten::error::short_digest(&l.digest),
            flatten::error::short_digest(&l.diff_id),
            verified,
            l.compression,
            l.compressed_size,
            l.size,
            l.entries,
            l.whiteouts
        );
        if let Some(p) = &l.problem {
            let _ = writeln!(s, "     {p}");
        }
    }
    if !r.history.is_empty() {
        let _ = writeln!(s, "history:");
        for h in &r.history {
            let layer = h.layer.map_or("-".to_owned(), |i| i.to_string());
            let by = p(h.created_by.as_deref().unwrap_or(""));
            let _ = writeln!(s, "  layer {layer:<3} {by}");
        }
    }
    s
}

pub(super) fn plural(n: u64, what: &str) -> String {
    match (n, what.strip_suffix('y')) {
        (1, _) => format!("1 {what}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {what}s"),
    }
}

pub(super) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}
