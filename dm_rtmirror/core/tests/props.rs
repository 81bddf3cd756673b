//! Property tests: canonical round-trips and "never panics" on junk input.

use proptest::prelude::*;
use rtmirror_core::fmtbuf::FmtBuf;
use rtmirror_core::message::*;
use rtmirror_core::status::*;
use rtmirror_core::table::*;

/// Owned material from which a valid `TableConfig` is built.
#[derive(Debug, Clone)]
struct Owned {
    nr_legs: u8,
    names: Vec<String>,
    present: Vec<bool>,
    nr_logs: u8,
    region_shift: u32,
    io_timeout_ms: u32,
    primary_pick: usize,
    primary_explicit: bool,
    resync_kbps: u32,
    nosync: bool,
    log_uuid: Option<[u8; 16]>,
    allow_missing: bool,
}

impl Owned {
    fn cfg(&self) -> TableConfig<'_> {
        let mut legs = [None; MAX_LEGS];
        let n = usize::from(self.nr_legs);
        for ((slot, name), &present) in legs.iter_mut().zip(&self.names).zip(&self.present).take(n)
        {
            if present {
                *slot = Some(name.as_str());
            }
        }
        let present: Vec<usize> = (0..usize::from(self.nr_legs))
            .filter(|&i| legs[i].is_some())
            .collect();
        let primary = if self.primary_explicit {
            present[self.primary_pick % present.len()]
        } else {
            present[0]
        };
        let mut logs = [None; MAX_LOGS];
        for (i, log) in logs.iter_mut().enumerate().take(usize::from(self.nr_logs)) {
            if self.present[MAX_LEGS + i] {
                *log = Some(self.names[MAX_LEGS + i].as_str());
            }
        }
        TableConfig {
            nr_legs: self.nr_legs,
            legs,
            nr_logs: self.nr_logs,
            logs,
            region_size: 1u64 << self.region_shift,
            io_timeout_ms: self.io_timeout_ms,
            primary: primary as u8,
            primary_explicit: self.primary_explicit,
            resync_kbps: self.resync_kbps,
            nosync: self.nosync,
            log_uuid: self.log_uuid,
            allow_missing: self.allow_missing,
        }
    }
}

fn device_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:/_.-]{1,12}".prop_filter("not the absent marker", |s| s != "-")
}

fn owned() -> impl Strategy<Value = Owned> {
    (
        2u8..=4,
        prop::collection::hash_set(device_name(), MAX_LEGS + MAX_LOGS),
        prop::collection::vec(any::<bool>(), MAX_LEGS + MAX_LOGS),
        0u8..=2,
        3u32..=21,
        prop_oneof![Just(0u32), 0u32..=MAX_IO_TIMEOUT_MS],
        any::<usize>(),
        any::<bool>(),
        prop_oneof![Just(0u32), any::<u32>()],
        any::<bool>(),
        prop::option::of(any::<[u8; 16]>().prop_filter("not zero", |u| *u != [0; 16])),
        any::<bool>(),
    )
        .prop_map(
            |(nr_legs, names, mut present, nr_logs, rs, to, pp, pe, rk, ns, lu, am)| {
                if !present.iter().take(usize::from(nr_legs)).any(|&p| p) {
                    present[0] = true;
                }
                Owned {
                    nr_legs,
                    names: names.into_iter().collect(),
                    present,
                    nr_logs,
                    region_shift: rs,
                    io_timeout_ms: to,
                    primary_pick: pp,
                    primary_explicit: pe,
                    resync_kbps: rk,
                    nosync: ns,
                    log_uuid: lu,
                    allow_missing: am,
                }
            },
        )
}

fn fmt_table(cfg: &TableConfig<'_>) -> String {
    let mut s = String::new();
    format_table(cfg, &mut s).unwrap();
    s
}

/// A word that is likely to reach interesting parser states.
fn junk_word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "region_size",
            "io_timeout_ms",
            "primary",
            "resync_kbps",
            "nosync",
            "fail",
            "split",
            "rejoin",
            "resync",
            "-",
            "0",
            "1",
            "2",
            "3",
            "4",
            "8",
            "8192",
            "3600000",
            "3600001",
            "4294967295",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
            "",
            "AA",
            "1/1",
            "healthy",
            "idle",
        ])
        .prop_map(String::from),
        any::<u64>().prop_map(|n| n.to_string()),
        "[0-9]{1,40}",
        "[a-z:/]{0,6}",
        "\\PC{0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn table_canonical_round_trip(o in owned()) {
        let cfg = o.cfg();
        let line = fmt_table(&cfg);
        let words: Vec<&str> = line.split(' ').collect();
        let parsed = parse_table(&words);
        prop_assert_eq!(parsed, Ok(cfg), "line {:?}", line);
        let again = fmt_table(&parsed.unwrap());
        prop_assert_eq!(&again, &line);
        prop_assert!(!line.ends_with(' ') && !line.contains("  "));
    }

    #[test]
    fn table_options_in_any_order(o in owned(), seed in any::<u64>()) {
        // Emit every option (defaults included) in a shuffled order; the
        // parse must equal the canonical config apart from primary_explicit.
        let cfg = o.cfg();
        let mut opts: Vec<Vec<String>> = vec![
            vec!["region_size".into(), cfg.region_size.to_string()],
            vec!["io_timeout_ms".into(), cfg.io_timeout_ms.to_string()],
            vec!["primary".into(), cfg.primary.to_string()],
            vec!["resync_kbps".into(), cfg.resync_kbps.to_string()],
        ];
        if cfg.nosync {
            opts.push(vec!["nosync".into()]);
        }
        if let Some(u) = cfg.log_uuid {
            let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
            opts.push(vec!["log_uuid".into(), hex]);
        }
        if cfg.allow_missing {
            opts.push(vec!["allow_missing".into()]);
        }
        // Deterministic shuffle driven by the seed.
        let mut s = seed;
        for i in (1..opts.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            opts.swap(i, (s >> 33) as usize % (i + 1));
        }
        let flat: Vec<String> = opts.into_iter().flatten().collect();
        let mut line = fmt_table(&TableConfig { region_size: DEFAULT_REGION_SIZE, io_timeout_ms: 0,
            primary_explicit: false, resync_kbps: 0, nosync: false, log_uuid: None,
            allow_missing: false, ..cfg });
        // Replace the trailing "0" option count.
        line.truncate(line.len() - 1);
        line.push_str(&flat.len().to_string());
        for w in &flat {
            line.push(' ');
            line.push_str(w);
        }
        let words: Vec<&str> = line.split(' ').collect();
        let parsed = parse_table(&words).unwrap();
        prop_assert_eq!(parsed, TableConfig { primary_explicit: true, ..cfg });
    }

    #[test]
    fn junk_words_never_panic(
        words in prop::collection::vec(junk_word(), 0..24),
        nr_legs in any::<u8>(),
    ) {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        if let Ok(cfg) = parse_table(&w) {
            // Anything accepted has a canonical form that re-parses to it.
            let line = fmt_table(&cfg);
            let again: Vec<&str> = line.split(' ').collect();
            prop_assert_eq!(parse_table(&again), Ok(cfg));
        }
        if let Err(e) = parse_table(&w) {
            let _ = e.to_string();
            let _ = e.reason();
        }
        if let Err(e) = parse_message(&w, nr_legs) {
            let _ = e.to_string();
            let _ = e.reason();
        }
        let joined = words.join(" ");
        let mut legs = [LegState::default(); 4];
        let mut logs = [LogState::default(); 2];
        if let Err(e) = parse_status(&joined, &mut legs, &mut logs) {
            let _ = e.to_string();
            let _ = e.reason();
        }
    }

    #[test]
    fn junk_after_valid_prefix_never_panics(
        prefix in prop::sample::select(vec!["2 a b 0", "3 a - c 1 l", "4 - - - d 2 l m", "2 a b 2 l"]),
        words in prop::collection::vec(junk_word(), 0..12),
    ) {
        let mut w: Vec<&str> = prefix.split(' ').collect();
        let count = words.len().to_string();
        w.push(&count);
        w.extend(words.iter().map(String::as_str));
        if let Ok(cfg) = parse_table(&w) {
            let line = fmt_table(&cfg);
            let again: Vec<&str> = line.split(' ').collect();
            prop_assert_eq!(parse_table(&again), Ok(cfg));
        }
    }

    #[test]
    fn junk_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..96), nr_legs in any::<u8>()) {
        let s = String::from_utf8_lossy(&bytes);
        let w: Vec<&str> = s.split(' ').collect();
        let _ = parse_table(&w);
        let _ = parse_message(&w, nr_legs);
        let mut legs = [LegState::default(); 4];
        let mut logs = [LogState::default(); 2];
        let _ = parse_status(&s, &mut legs, &mut logs);
    }

    #[test]
    fn status_round_trip(
        legs in prop::collection::vec(prop::sample::select(LegState::ALL.to_vec()), 0..=4),
        logs in prop::collection::vec(prop::sample::select(LogState::ALL.to_vec()), 0..=2),
        total in any::<u64>(),
        frac in any::<u64>(),
        health in prop::sample::select(Health::ALL.to_vec()),
        action in prop::sample::select(SyncAction::ALL.to_vec()),
    ) {
        let in_sync = match total.checked_add(1) {
            Some(modulus) => frac % modulus,
            None => frac,
        };
        let info = StatusInfo { legs: &legs, logs: &logs, in_sync_regions: in_sync,
            total_regions: total, health, sync_action: action };
        let mut line = String::new();
        format_status(&info, &mut line).unwrap();
        let mut lo = [LegState::default(); 4];
        let mut go = [LogState::default(); 2];
        let p = parse_status(&line, &mut lo, &mut go).unwrap();
        prop_assert_eq!(p, ParsedStatus { nr_legs: legs.len() as u8, nr_logs: logs.len() as u8,
            in_sync_regions: in_sync, total_regions: total, health, sync_action: action });
        prop_assert_eq!(&lo[..legs.len()], &legs[..]);
        prop_assert_eq!(&go[..logs.len()], &logs[..]);
        // Same text through the fixed buffer.
        let mut buf = [0u8; 128];
        let mut fb = FmtBuf::new(&mut buf);
        format_status(&info, &mut fb).unwrap();
        prop_assert_eq!(fb.as_str(), line.as_str());
    }

    #[test]
    fn message_round_trip(
        nr_legs in 1u8..=4,
        pick in any::<u8>(),
        kind in 0u8..8,
        ms in 0u32..=MAX_IO_TIMEOUT_MS,
        kbps in any::<u32>(),
    ) {
        let i = pick % nr_legs;
        let m = match kind {
            0 => Message::Fail(i),
            1 => Message::Split(i),
            2 => Message::Rejoin(i),
            3 => Message::Resync,
            4 => Message::IoTimeoutMs(ms),
            5 => Message::Primary(i),
            6 => Message::Trust(i),
            _ => Message::ResyncKbps(kbps),
        };
        let mut line = String::new();
        format_message(&m, &mut line).unwrap();
        let w: Vec<&str> = line.split(' ').collect();
        prop_assert_eq!(parse_message(&w, nr_legs), Ok(m));
    }

    #[test]
    fn fmtbuf_all_or_error(o in owned(), cap in 0usize..96) {
        let cfg = o.cfg();
        let full = fmt_table(&cfg);
        let mut buf = vec![0u8; cap];
        let mut fb = FmtBuf::new(&mut buf);
        let r = format_table(&cfg, &mut fb);
        prop_assert_eq!(r.is_ok(), cap >= full.len());
        prop_assert!(full.starts_with(fb.as_str()));
        if r.is_ok() {
            prop_assert_eq!(fb.as_str(), full.as_str());
        }
    }
}
