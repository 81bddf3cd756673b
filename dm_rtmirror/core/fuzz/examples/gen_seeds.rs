//! Writes the seed corpora of the text targets and of `log_raw` (log copies made with the
//! encoders) into `corpus/<target>/seed-*`. Run from the fuzz directory:
//! `cargo run --example gen_seeds` (scripts/fuzz.sh does not need it; the seeds are committed).

use rtmirror_core::log_format::*;
use rtmirror_core::status::LegState;
use rtmirror_core_fuzz::{
    check_activation, check_decoders, check_log_input, want_from_raw, LogInput,
};
use std::fs;
use std::path::Path;

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

const TABLES: &[&str] = &[
    "2 /dev/sdb /dev/sdc 2 /dev/sdd /dev/sde 0",
    "2 - /dev/sdc 0 2 region_size 1024",
    "2 8:16 8:32 0 4 io_timeout_ms 15000 primary 1",
    "2 8:16 8:32 2 8:48 8:64 2 log_uuid 3f2a9c1e5b7d4e60a1b2c3d4e5f60718",
    "2 PARTLABEL=leg-a PARTLABEL=leg-b 2 PARTLABEL=log-a PARTLABEL=log-b 1 allow_missing",
    "4 8:16 - 8:48 8:64 1 - 5 resync_kbps 1024 nosync region_size 8",
    "3 a b c 1 d 12 region_size 2097152 io_timeout_ms 3600000 primary 2 resync_kbps 4294967295 nosync allow_missing",
];

const MESSAGES: &[&str] = &[
    "fail 1",
    "split 0",
    "rejoin 2",
    "resync",
    "rejoin_log 1",
    "io_timeout_ms 3600000",
    "io_timeout_ms 0",
    "primary 2",
    "trust 2",
    "resync_kbps 4294967295",
];

const STATUS: &[&str] = &[
    "2 AA 16/16 2 AA healthy idle",
    "2 AM 0/1024 0 - degraded idle\n",
    "4 ARDS 5/9 1 F failed resync",
    "3 AIM 18446744073709551615/18446744073709551615 2 FA degraded resync",
];

const UUID: [u8; 16] = *b"rtmirror-fuzz-01";

fn bits(nr: u64, pattern: u64) -> Vec<u64> {
    (0..bitmap_words(nr) as u64)
        .map(|i| pattern.rotate_left(i as u32))
        .collect()
}

/// A version 2 copy: headers `slots` (generation, leg states, clean) and every block.
fn v2(nr: u64, legs: u8, slots: &[Option<(u64, &[LegState], bool)>], pattern: u64) -> Vec<u8> {
    let mut img = vec![0u8; log_bytes_needed(nr) as usize];
    let map = bits(nr, pattern);
    let mut newest = 1;
    for (s, h) in slots.iter().enumerate() {
        let Some((gen, states, clean)) = *h else {
            continue;
        };
        let mut hd = LogHeader::new(UUID, 1024, nr, legs);
        hd.generation = gen;
        for (i, &st) in states.iter().enumerate() {
            hd.leg_states[i] = st;
            hd.stale_since[i] = if st == LegState::InSync { 0 } else { 1 };
        }
        hd.clean_shutdown = clean;
        encode_header(&hd, &mut img[s * HEADER_BYTES..]).unwrap();
        newest = newest.max(gen);
    }
    for b in 0..bitmap_blocks(nr) {
        let pos = (bitmap_block_pos(b) * LOG_BLOCK_BYTES) as usize;
        encode_bitmap_block(&UUID, newest, nr, b, &map, &mut img[pos..]).unwrap();
    }
    img
}

fn main() {
    for (i, t) in TABLES.iter().enumerate() {
        write("table", &i.to_string(), t.as_bytes());
    }
    for (i, m) in MESSAGES.iter().enumerate() {
        let mut d = vec![3u8];
        d.extend_from_slice(m.as_bytes());
        write("message", &i.to_string(), &d);
    }
    for (i, s) in STATUS.iter().enumerate() {
        write("status", &i.to_string(), s.as_bytes());
    }
    use LegState::*;
    let a2: &[LegState] = &[InSync, InSync];
    let ar: &[LegState] = &[InSync, Resyncing];
    write(
        "log_raw",
        "v2-one-slot",
        &v2(1000, 2, &[Some((1, a2, false)), None], 0x8001),
    );
    write(
        "log_raw",
        "v2-two-slots",
        &v2(77, 2, &[Some((7, ar, false)), Some((8, a2, false))], 0xF0F0),
    );
    write(
        "log_raw",
        "v2-clean",
        &v2(64, 2, &[None, Some((3, a2, true))], u64::MAX),
    );
    let a4: &[LegState] = &[InSync, Degraded, Missing, Split];
    write(
        "log_raw",
        "v2-three-blocks",
        &v2(
            2 * REGIONS_PER_BLOCK + 5,
            4,
            &[Some((2, a4, false)), None],
            1,
        ),
    );
    let nr = 300;
    let mut h = LogHeader::new(UUID, 1024, nr, 3);
    h.generation = 5;
    h.leg_states[2] = Inactive;
    h.stale_since[2] = 4;
    let mut img = vec![0u8; log_bytes_v1(nr) as usize];
    encode_v1(&h, &bits(nr, 0x0102_0408_1020_4080), &mut img).unwrap();
    write("log_raw", "v1", &img);
    write("log_raw", "blank", &[0u8; 2 * HEADER_BYTES]);

    // How the log targets see these seeds, and what random structured inputs reach.
    for e in fs::read_dir("corpus/log_raw").unwrap() {
        let e = e.unwrap();
        let data = fs::read(e.path()).unwrap();
        let want = want_from_raw(&data, true);
        check_decoders(&data, &want);
        let (act, _, _) = check_activation(&want, &[Some(&data)]).unwrap();
        println!(
            "{:?}: {:?} {:?}",
            e.file_name(),
            act.outcome,
            act.classes[0]
        );
    }
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..3000 {
        let bytes: Vec<u8> = (0..600)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let mut u = arbitrary::Unstructured::new(&bytes);
        let Ok(input) = <LogInput as arbitrary::Arbitrary>::arbitrary(&mut u) else {
            continue;
        };
        *counts
            .entry(format!("{:?}", check_log_input(&input)))
            .or_insert(0) += 1;
    }
    println!("random structured inputs: {counts:?}");
}
