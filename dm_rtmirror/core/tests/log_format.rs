//! On-disk log format: round trips, checksum vectors, torn/truncated copies,
//! activation (choose_copies) and resync source choice.
#![allow(clippy::needless_range_loop)]

use proptest::prelude::*;
use rtmirror_core::log_format::*;
use rtmirror_core::status::LegState;

const UUID: [u8; 16] = *b"0123456789abcdef";

fn header(nr_regions: u64) -> LogHeader {
    LogHeader::new(UUID, 8192, nr_regions, 2)
}

fn enc(h: &LogHeader, bits: &[u64]) -> Vec<u8> {
    let mut out = vec![0u8; log_bytes_v1(h.nr_regions) as usize];
    let n = encode_v1(h, bits, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

fn dec(buf: &[u8]) -> Result<(LogHeader, Vec<u64>), LogError> {
    let mut bits = vec![0u64; 1 << 12];
    let h = decode_v1(buf, &mut bits)?;
    bits.truncate(bitmap_words(h.nr_regions));
    Ok((h, bits))
}

#[test]
fn crc32c_vectors() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    let inc: Vec<u8> = (0..32).collect();
    assert_eq!(crc32c(&inc), 0x46DD_794E);
    assert_eq!(crc32c_update(crc32c(b"1234"), b"56789"), 0xE306_9283);
}

#[test]
fn sizes() {
    assert_eq!(log_bytes_v1(0), 4096);
    assert_eq!(log_bytes_v1(1), 8192);
    assert_eq!(log_bytes_v1(4096 * 8), 8192);
    assert_eq!(log_bytes_v1(4096 * 8 + 1), 12288);
    // Version 2: two header slots and 32256 regions per 4 KiB block.
    assert_eq!(REGIONS_PER_BLOCK, 32256);
    assert_eq!(log_bytes_needed(0), 8192);
    assert_eq!(log_bytes_needed(1), 12288);
    assert_eq!(log_bytes_needed(32256), 12288);
    assert_eq!(log_bytes_needed(32257), 16384);
    assert_eq!(bitmap_blocks(MAX_REGIONS), 133_153);
    assert_eq!(max_regions_for(0), 0);
    assert_eq!(max_regions_for(12287), 0);
    assert_eq!(max_regions_for(12288), 32256);
    assert_eq!(max_regions_for(u64::MAX), MAX_REGIONS);
    for n in [1u64, 100, 32256, 32257, 1 << 20, MAX_REGIONS] {
        assert!(log_bytes_needed(n) >= log_bytes_v1(n));
        assert!(max_regions_for(log_bytes_needed(n)) >= n);
    }
    assert_eq!(bitmap_words(65), 2);
}

#[test]
fn layout_is_stable() {
    let mut h = header(100);
    h.generation = 7;
    h.leg_states[1] = LegState::Degraded;
    h.stale_since[1] = 5;
    h.clean_shutdown = true;
    let buf = enc(&h, &[1 | (1 << 63), 0xF]);
    assert_eq!(&buf[..8], b"RTMIRLOG");
    assert_eq!(buf[8..12], 1u32.to_le_bytes());
    assert_eq!(buf[12..16], 4096u32.to_le_bytes());
    assert_eq!(buf[16..32], UUID);
    assert_eq!(buf[32..40], 7u64.to_le_bytes());
    assert_eq!(buf[40..48], 8192u64.to_le_bytes());
    assert_eq!(buf[48..56], 100u64.to_le_bytes());
    assert_eq!(buf[56], 2);
    assert_eq!(buf[57], 1);
    assert_eq!(&buf[64..68], b"AD\0\0");
    assert_eq!(buf[80..88], 5u64.to_le_bytes());
    assert_eq!(buf[4096], 1);
    assert_eq!(buf[4096 + 7], 0x80);
    assert_eq!(buf[4096 + 8], 0xF);
    let mut z = buf.clone();
    z[60..64].fill(0);
    assert_eq!(buf[60..64], crc32c(&z).to_le_bytes());
    assert_eq!(dec(&buf).unwrap().0, h.normalized());
}

#[test]
fn encode_rejects_bad_headers() {
    let mut out = vec![0u8; 8192];
    let bits = [0u64; 2];
    let mut h = header(100);
    h.nr_legs = 1;
    assert_eq!(encode_v1(&h, &bits, &mut out), Err(LogError::BadGeometry));
    let mut h = header(100);
    h.region_size = 1000;
    assert_eq!(encode_v1(&h, &bits, &mut out), Err(LogError::BadGeometry));
    let mut h = header(100);
    h.leg_states[0] = LegState::Degraded;
    assert_eq!(encode_v1(&h, &bits, &mut out), Err(LogError::BadLegState));
    let mut h = header(100);
    h.generation = 0;
    assert_eq!(encode_v1(&h, &bits, &mut out), Err(LogError::BadLegState));
    let h = header(100);
    assert_eq!(
        encode_v1(&h, &bits[..1], &mut out),
        Err(LogError::BitmapTooSmall)
    );
    assert_eq!(
        encode_v1(&h, &bits, &mut out[..8191]),
        Err(LogError::BufferTooSmall)
    );
    let e = LogError::UnsupportedVersion(9);
    assert_eq!(
        e.reason().to_str().unwrap(),
        "unsupported log format version"
    );
    assert_eq!(
        e.to_string(),
        "unsupported log format version 9 (expected 1 or 2)"
    );
}

#[test]
fn decode_errors() {
    let h = header(100);
    let buf = enc(&h, &[0, 0]);
    assert_eq!(dec(&buf[..100]).unwrap_err(), LogError::TooShort);
    let mut b = buf.clone();
    b[0] = b'X';
    assert_eq!(dec(&b).unwrap_err(), LogError::BadMagic);
    let mut b = buf.clone();
    b[8] = 2;
    assert_eq!(dec(&b).unwrap_err(), LogError::UnsupportedVersion(2));
    let mut b = buf.clone();
    b[5000] ^= 1;
    assert_eq!(dec(&b).unwrap_err(), LogError::BadChecksum);
    let mut small = vec![0u64; 1];
    assert_eq!(decode_v1(&buf, &mut small), Err(LogError::BitmapTooSmall));
    assert_eq!(dec(&[0u8; 8192]).unwrap_err(), LogError::BadMagic);
}

fn arb_leg() -> impl Strategy<Value = LegState> {
    prop::sample::select(LegState::ALL.to_vec())
}

prop_compose! {
    fn arb_header()(
        uuid in any::<[u8; 16]>(),
        generation in 1u64..u64::MAX,
        shift in 3u32..=21,
        nr_regions in prop_oneof![1u64..200, 1u64..100_000],
        nr_legs in 2u8..=4,
        legs in prop::array::uniform4(arb_leg()),
        stale in prop::array::uniform4(any::<u64>()),
        junk in prop::array::uniform4(arb_leg()),
        clean in any::<bool>(),
    ) -> LogHeader {
        let mut h = LogHeader::new(uuid, 1 << shift, nr_regions, nr_legs);
        h.generation = generation;
        h.clean_shutdown = clean;
        for i in 0..4 {
            if i < usize::from(nr_legs) {
                h.leg_states[i] = legs[i];
                h.stale_since[i] = if legs[i] == LegState::InSync { 0 } else { 1 + stale[i] % generation };
            } else {
                h.leg_states[i] = junk[i];
                h.stale_since[i] = stale[i];
            }
        }
        h
    }
}

fn arb_bits(nr_regions: u64) -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(
        prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()],
        bitmap_words(nr_regions),
    )
}

fn masked(mut bits: Vec<u64>, nr_regions: u64) -> Vec<u64> {
    if !nr_regions.is_multiple_of(64) {
        *bits.last_mut().unwrap() &= (1u64 << (nr_regions % 64)) - 1;
    }
    bits
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn round_trip((h, bits) in arb_header().prop_flat_map(|h| (Just(h), arb_bits(h.nr_regions)))) {
        let buf = enc(&h, &bits);
        let (h2, bits2) = dec(&buf).unwrap();
        prop_assert_eq!(h2, h.normalized());
        prop_assert_eq!(bits2, masked(bits, h.nr_regions));
        // Trailing bytes after the copy are ignored.
        let mut longer = buf.clone();
        longer.extend_from_slice(&[0xAB; 100]);
        prop_assert_eq!(dec(&longer).unwrap().0, h.normalized());
    }

    #[test]
    fn any_flip_is_detected(
        nr in 1u64..70_000,
        pos in any::<prop::sample::Index>(),
        mask in 1u8..=255,
        seed in any::<u64>(),
    ) {
        let h = header(nr);
        let bits: Vec<u64> = (0..bitmap_words(nr) as u64).map(|i| i.wrapping_mul(seed)).collect();
        let mut buf = enc(&h, &bits);
        let p = pos.index(buf.len());
        buf[p] ^= mask;
        prop_assert!(dec(&buf).is_err(), "flip at {} not detected", p);
    }

    #[test]
    fn any_truncation_is_detected(nr in 1u64..70_000, cut in any::<prop::sample::Index>()) {
        let h = header(nr);
        let buf = enc(&h, &vec![u64::MAX; bitmap_words(nr)]);
        let len = cut.index(buf.len());
        prop_assert!(dec(&buf[..len]).is_err());
    }

    #[test]
    fn torn_write_is_detected(nr in 1u64..200_000, split in any::<prop::sample::Index>()) {
        // New header block(s) over an older image: block-granular tear.
        let mut old = header(nr);
        old.generation = 5;
        let mut new = old;
        new.generation = 6;
        let a = enc(&old, &vec![0; bitmap_words(nr)]);
        let b = enc(&new, &vec![u64::MAX; bitmap_words(nr)]);
        let blocks = a.len() / 4096;
        let k = 1 + split.index(blocks.max(2) - 1);
        prop_assume!(k < blocks);
        let mut torn = b[..k * 4096].to_vec();
        torn.extend_from_slice(&a[k * 4096..]);
        prop_assert_eq!(dec(&torn).unwrap_err(), LogError::BadChecksum);
        let mut torn = a[..k * 4096].to_vec();
        torn.extend_from_slice(&b[k * 4096..]);
        prop_assert_eq!(dec(&torn).unwrap_err(), LogError::BadChecksum);
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..9000), words in 0usize..200) {
        let mut bits = vec![0u64; words];
        let _ = decode_v1(&buf, &mut bits);
    }

    #[test]
    fn valid_header_junk_never_panics(h in arb_header(), patch in prop::collection::vec((0usize..4096, any::<u8>()), 0..8)) {
        // Patch the header then fix up the checksum so semantic checks run.
        let mut buf = enc(&h, &vec![0; bitmap_words(h.nr_regions)]);
        for (p, v) in patch { buf[p] = v; }
        let mut z = buf.clone();
        z[60..64].fill(0);
        let c = crc32c(&z);
        buf[60..64].copy_from_slice(&c.to_le_bytes());
        let mut bits = vec![0u64; bitmap_words(h.nr_regions)];
        if let Ok(h2) = decode_v1(&buf, &mut bits) {
            prop_assert!(h2.validate().is_ok());
        }
    }
}

// ---------------------------------------------------------------------------
// Version 2

fn want(nr: u64) -> LogWant {
    LogWant {
        uuid: Some(UUID),
        region_size: 8192,
        nr_regions: nr,
        nr_legs: 2,
    }
}

/// Writes generation `h` into the copy image `img`: its header slot and the
/// bitmap blocks in `blocks` (all if `None`).
fn write_gen(img: &mut Vec<u8>, h: &LogHeader, bits: &[u64], blocks: Option<&[u64]>) {
    let nr = h.nr_regions;
    img.resize(log_bytes_needed(nr) as usize, 0);
    let slot = (h.generation % 2) as usize * 4096;
    encode_header(h, &mut img[slot..slot + 4096]).unwrap();
    let all: Vec<u64> = (0..bitmap_blocks(nr)).collect();
    for &b in blocks.unwrap_or(&all) {
        let off = bitmap_block_pos(b) as usize * 4096;
        encode_bitmap_block(
            &h.uuid,
            h.generation,
            nr,
            b,
            bits,
            &mut img[off..off + 4096],
        )
        .unwrap();
    }
}

fn v2(h: &LogHeader, bits: &[u64]) -> Vec<u8> {
    let mut img = vec![];
    write_gen(&mut img, h, bits, None);
    img
}

fn act(w: &LogWant, copies: &[Option<&[u8]>]) -> (Activation, Vec<u64>, Vec<u64>) {
    let words = bitmap_words(w.nr_regions);
    let (mut u, mut c) = (vec![0u64; words], vec![0u64; words]);
    let a = activate_copies(w, copies, &mut u, &mut c).unwrap();
    (a, u, c)
}

#[test]
fn v2_layout_is_stable() {
    let mut h = header(100);
    h.generation = 7;
    h.leg_states[1] = LegState::Degraded;
    h.stale_since[1] = 5;
    let img = v2(&h, &[1 | (1 << 63), 0xF]);
    assert_eq!(img.len(), 3 * 4096);
    // Generation 7 goes to slot 1; slot 0 stays blank.
    assert!(img[..4096].iter().all(|&b| b == 0));
    let s = &img[4096..8192];
    assert_eq!(&s[..8], b"RTMIRLOG");
    assert_eq!(s[8..12], 2u32.to_le_bytes());
    assert_eq!(s[32..40], 7u64.to_le_bytes());
    assert_eq!(&s[64..68], b"AD\0\0");
    let mut z = s.to_vec();
    z[60..64].fill(0);
    assert_eq!(s[60..64], crc32c(&z).to_le_bytes());
    assert_eq!(decode_header(s).unwrap(), h.normalized());
    let b = &img[8192..];
    assert_eq!(&b[..8], b"RTMIRBLK");
    assert_eq!(b[8..12], 0u32.to_le_bytes());
    assert_eq!(b[16..24], 7u64.to_le_bytes());
    assert_eq!(b[24..40], UUID);
    assert_eq!(b[64], 1);
    assert_eq!(b[64 + 7], 0x80);
    assert_eq!(b[72], 0xF);
    let mut z = b.to_vec();
    z[12..16].fill(0);
    assert_eq!(b[12..16], crc32c(&z).to_le_bytes());
    let mut bits = [0u64; 2];
    assert_eq!(decode_bitmap_block(&UUID, 100, 0, b, &mut bits), Ok(7));
    assert_eq!(bits, [1 | (1 << 63), 0xF]);
    assert_eq!(
        decode_bitmap_block(&[1; 16], 100, 0, b, &mut bits),
        Err(LogError::Misplaced)
    );
}

#[test]
fn v2_activation_basic() {
    let nr = 2 * REGIONS_PER_BLOCK + 100;
    let words = bitmap_words(nr);
    let mut bits = vec![0u64; words];
    bits[0] = 0b101;
    bits[WORDS_PER_BLOCK] = 1;
    bits[words - 1] = 1 << 3;
    let mut h = header(nr);
    h.generation = 4;
    let img = v2(&h, &bits);
    let (a, u, c) = act(&want(nr), &[Some(&img), Some(&img)]);
    assert_eq!(a.outcome, LogOutcome::Found);
    assert_eq!(a.newest, Some(h));
    assert_eq!(a.classes[..2], [CopyClass::V2, CopyClass::V2]);
    assert_eq!(a.used(), 0b11);
    assert_eq!(a.max_generation, 4);
    assert_eq!((a.bad_blocks, a.clean, a.upgrade), (0, false, false));
    // Generation 4 is in slot 0: the next write goes to slot 1 on both.
    assert_eq!(a.next_slots, 0b11);
    assert_eq!(u, bits);
    assert_eq!(c, bits);
    assert_eq!(a.out_of_sync, 4);
    // A corrupt block on one copy: its regions all dirty, not common.
    let mut bad = img.clone();
    bad[bitmap_block_pos(1) as usize * 4096 + 100] ^= 1;
    let (a, u, c) = act(&want(nr), &[Some(&img), Some(&bad)]);
    assert_eq!(a.bad_blocks, 1);
    assert!(u[WORDS_PER_BLOCK..2 * WORDS_PER_BLOCK]
        .iter()
        .all(|&w| w == u64::MAX));
    assert!(c[WORDS_PER_BLOCK..2 * WORDS_PER_BLOCK]
        .iter()
        .all(|&w| w == 0));
    assert_eq!(u[0], 0b101);
    assert_eq!(c[0], 0b101);
    assert_eq!(
        activate_copies(
            &want(nr),
            &[None; 9],
            &mut vec![0; words],
            &mut vec![0; words]
        ),
        Err(LogError::TooManyCopies)
    );
}

/// The data-safety issue: one power cut tears both copies in the same write.
/// Version 1 loses the log (both whole-copy checksums fail, activation would
/// take the primary as resync source); version 2 keeps the previous header
/// slot and counts torn blocks as dirty.
#[test]
fn both_copies_torn_in_one_write() {
    let nr = 100;
    let mut old = header(nr);
    old.generation = 5;
    let mut new = old;
    new.generation = 6;
    new.leg_states[1] = LegState::Degraded;
    new.stale_since[1] = 6;
    let (a_bits, b_bits) = ([0b0110u64, 0], [0b1100u64, 0]);

    // Version 1: the new header block lands, the bitmap block does not.
    let v1_old = enc(&old, &a_bits);
    let v1_new = enc(&new, &b_bits);
    let mut torn = v1_new[..4096].to_vec();
    torn.extend_from_slice(&v1_old[4096..]);
    assert!(dec(&torn).is_err(), "v1: the torn copy is unusable");
    let (a, _, _) = act(&want(nr), &[Some(&torn), Some(&torn)]);
    assert_eq!(a.outcome, LogOutcome::Unknown, "v1: log lost");

    // Version 2, copy 0: new header, old block; copy 1: torn header, torn block.
    let mut c0 = v2(&old, &a_bits);
    let mut c1 = c0.clone();
    write_gen(&mut c0, &new, &b_bits, Some(&[]));
    let mut scratch = c1.clone();
    write_gen(&mut scratch, &new, &b_bits, None);
    c1[..40].copy_from_slice(&scratch[..40]); // start of slot 0 (gen 6)
    c1[8192..8208].copy_from_slice(&scratch[8192..8208]); // the first sector's start
    let (a, u, _) = act(&want(nr), &[Some(&c0), Some(&c1)]);
    assert_eq!(a.outcome, LogOutcome::Found);
    assert_eq!(a.newest.unwrap().generation, 6);
    assert_eq!(a.newest.unwrap().leg_states[1], LegState::Degraded);
    assert_eq!(a.bad_blocks, 1);
    // Bits on disk in both generations stay dirty (the torn block: all).
    assert_eq!(u[0] & 0b0100, 0b0100);
    assert_eq!(u[0], u64::MAX);
    // Copy 1 alone: its header slot of generation 6 is torn, slot 1 keeps 5.
    let (a, _, _) = act(&want(nr), &[None, Some(&c1)]);
    assert_eq!(a.newest.unwrap().generation, 5);
}

#[test]
fn blank_corrupt_foreign_unreadable() {
    let nr = 100;
    let blank = vec![0u8; log_bytes_needed(nr) as usize];
    let mut garbage = blank.clone();
    garbage[5000] = 1;
    let h = header(nr);
    let mine = v2(&h, &[1, 0]);
    let mut other = h;
    other.uuid = [9; 16];
    other.generation = 50;
    let foreign = v2(&other, &[2, 0]);

    let (a, u, c) = act(&want(nr), &[Some(&blank), Some(&blank)]);
    assert_eq!(a.outcome, LogOutcome::New);
    assert_eq!(a.classes[..2], [CopyClass::Blank, CopyClass::Blank]);
    assert_eq!(a.out_of_sync, nr);
    assert_eq!((u[1], c[1]), ((1 << 36) - 1, 0));
    assert_eq!(act(&want(nr), &[]).0.outcome, LogOutcome::New);
    // A new mirror whose second log device cannot be read.
    let (a, _, _) = act(&want(nr), &[Some(&blank), None]);
    assert_eq!(a.outcome, LogOutcome::New);
    for pair in [
        [Some(&blank[..]), Some(&garbage[..])],
        [Some(&garbage[..]), Some(&garbage[..])],
        [None, None],
        [Some(&foreign[..]), Some(&blank[..])],
    ] {
        let (a, _, _) = act(&want(nr), &pair);
        assert_eq!(a.outcome, LogOutcome::Unknown, "{:?}", a.classes);
        assert!(a.log_lost());
        assert_eq!(
            resync_source(a.newest.as_ref(), &[true, true], 0),
            ResyncSource::Unknown
        );
    }
    let (a, _, _) = act(&want(nr), &[Some(&garbage), None]);
    assert_eq!(a.classes[..2], [CopyClass::Corrupt, CopyClass::Unreadable]);
    // Bound: a copy of another uuid is never used, even if newer.
    let (a, u, c) = act(&want(nr), &[Some(&foreign), Some(&mine)]);
    assert_eq!(a.classes[..2], [CopyClass::Foreign, CopyClass::V2]);
    assert_eq!(a.newest, Some(h));
    assert_eq!(a.max_generation, 1);
    assert_eq!((u[0], c[0]), (1, 0));
    // Unbound: the newest copy with this geometry gives the uuid.
    let unbound = LogWant {
        uuid: None,
        ..want(nr)
    };
    let (a, u, _) = act(&unbound, &[Some(&foreign), Some(&mine)]);
    assert_eq!(a.uuid, Some([9; 16]));
    assert_eq!(a.classes[..2], [CopyClass::V2, CopyClass::Foreign]);
    assert_eq!(u[0], 2);
    // Another geometry is foreign in both modes.
    let (a, _, _) = act(&want(nr + 1), &[Some(&mine), None]);
    assert_eq!(a.classes[0], CopyClass::Foreign);
    let (a, _, _) = act(
        &LogWant {
            uuid: None,
            ..want(nr + 1)
        },
        &[Some(&mine)],
    );
    assert_eq!((a.uuid, a.outcome), (None, LogOutcome::Unknown));
}

#[test]
fn clean_shutdown() {
    let nr = 100;
    let mut h = header(nr);
    h.generation = 3;
    h.clean_shutdown = true;
    let img = v2(&h, &[0b11, 0]);
    let (a, u, c) = act(&want(nr), &[Some(&img)]);
    assert!(a.clean);
    assert_eq!((u, c, a.out_of_sync), (vec![0, 0], vec![0, 0], 0));
    // A leg not in sync: the bits are real resync work.
    let mut d = h;
    d.leg_states[1] = LegState::Degraded;
    d.stale_since[1] = 2;
    let (a, u, _) = act(&want(nr), &[Some(&v2(&d, &[0b11, 0]))]);
    assert!(!a.clean);
    assert_eq!(u[0], 0b11);
    // Version 1 wrote the flag without flushing the legs: ignored.
    let (a, u, _) = act(&want(nr), &[Some(&enc(&h, &[0b11, 0]))]);
    assert!(!a.clean);
    assert_eq!(u[0], 0b11);
}

#[test]
fn v1_is_read_and_upgrade_is_safe() {
    let nr = 100;
    let mut h = header(nr);
    h.generation = 8;
    let mut v1 = enc(&h, &[0b1010, 0]);
    v1.resize(log_bytes_needed(nr) as usize, 0);
    let (a, u, c) = act(&want(nr), &[Some(&v1), Some(&v1)]);
    assert_eq!(a.classes[..2], [CopyClass::V1, CopyClass::V1]);
    assert!(a.upgrade);
    assert_eq!(a.next_slots, 0b11);
    assert_eq!((u[0], c[0], a.max_generation), (0b1010, 0b1010, 8));
    // The upgrade (generation 9, slot 1) torn on copy 0 while copy 1 is
    // still version 1 (copies are upgraded one after the other).
    let mut torn = v1.clone();
    let mut n = h;
    n.generation = 9;
    let mut full = v1.clone();
    write_gen(&mut full, &n, &[0b1000, 0], None);
    torn[4096..4136].copy_from_slice(&full[4096..4136]);
    let (a, u, _) = act(&want(nr), &[Some(&torn), Some(&v1)]);
    assert_eq!(a.classes[..2], [CopyClass::Corrupt, CopyClass::V1]);
    assert_eq!((a.outcome, u[0]), (LogOutcome::Found, 0b1010));
    // Completed on copy 0: version 2 there, newest.
    let (a, u, _) = act(&want(nr), &[Some(&full), Some(&v1)]);
    assert_eq!(a.classes[..2], [CopyClass::V2, CopyClass::V1]);
    assert_eq!((a.newest.unwrap().generation, u[0]), (9, 0b1010));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A log write of generation g+1 over g, torn on every copy at any
    /// subset of its blocks (each landed, not landed, or half landed):
    /// a valid header of generation >= g remains, and every region dirty in
    /// both generations is dirty in the union.
    #[test]
    fn any_torn_subset_keeps_a_generation(
        nr in 1u64..(3 * REGIONS_PER_BLOCK),
        g in 1u64..1000,
        seeds in prop::array::uniform2(any::<u64>()),
        fates in prop::array::uniform2(prop::collection::vec(0u8..3, 8)),
        half in 1usize..4095,
    ) {
        let words = bitmap_words(nr);
        let gen_bits = |seed: u64| -> Vec<u64> {
            masked((0..words as u64).map(|i| (i ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect(), nr)
        };
        let (a_bits, b_bits) = (gen_bits(seeds[0]), gen_bits(seeds[1]));
        let mut old = header(nr);
        old.generation = g;
        let mut new = old;
        new.generation = g + 1;
        let base = v2(&old, &a_bits);
        let target = {
            let mut t = base.clone();
            write_gen(&mut t, &new, &b_bits, None);
            t
        };
        let mut imgs = vec![];
        for fate in &fates {
            let mut img = base.clone();
            // Block list of the write: the header slot, then the bitmap blocks.
            let mut blocks = vec![(g + 1) % 2];
            blocks.extend((0..bitmap_blocks(nr)).map(bitmap_block_pos));
            for (k, &blk) in blocks.iter().enumerate() {
                let off = blk as usize * 4096;
                match fate[k % fate.len()] {
                    0 => {}
                    1 => img[off..off + 4096].copy_from_slice(&target[off..off + 4096]),
                    _ => img[off..off + half].copy_from_slice(&target[off..off + half]),
                }
            }
            imgs.push(img);
        }
        let (a, u, c) = act(&want(nr), &[Some(&imgs[0]), Some(&imgs[1])]);
        prop_assert_eq!(a.outcome, LogOutcome::Found);
        prop_assert!(a.newest.unwrap().generation >= g);
        for i in 0..words {
            prop_assert_eq!(u[i] & a_bits[i] & b_bits[i], a_bits[i] & b_bits[i]);
            prop_assert_eq!(c[i] & !u[i], 0);
        }
    }

    #[test]
    fn v2_any_flip_is_detected(
        nr in 1u64..70_000,
        pos in 0usize..4096,
        mask in 1u8..=255,
        seed in any::<u64>(),
    ) {
        let h = header(nr);
        let bits: Vec<u64> = (0..bitmap_words(nr) as u64).map(|i| i.wrapping_mul(seed)).collect();
        let img = v2(&h, &bits);
        let mut s = img[4096..8192].to_vec();
        s[pos] ^= mask;
        prop_assert!(decode_header(&s).is_err());
        let mut b = img[8192..12288].to_vec();
        b[pos] ^= mask;
        let mut out = vec![0u64; bitmap_words(nr)];
        prop_assert!(decode_bitmap_block(&UUID, nr, 0, &b, &mut out).is_err());
    }

    #[test]
    fn activation_never_panics(
        a in prop::collection::vec(any::<u8>(), 0..20_000),
        b in prop::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..20_000),
        nr in 1u64..100_000,
        bound in any::<bool>(),
    ) {
        let w = LogWant { uuid: bound.then_some(UUID), ..want(nr) };
        let words = bitmap_words(nr);
        let (mut u, mut c) = (vec![0u64; words], vec![0u64; words]);
        let r = activate_copies(&w, &[Some(&a), Some(&b), None], &mut u, &mut c).unwrap();
        prop_assert!(r.outcome != LogOutcome::Found);
        prop_assert_eq!(r.out_of_sync, nr);
    }
}

#[test]
fn block_runs() {
    let map = [0b1110_0110u64 | (1 << 63), 0b1, 0, 1 << 5];
    let runs: Vec<(u64, usize)> = {
        let mut v = vec![];
        let mut from = 0;
        while let Some((b, n)) = next_run(&map, from, 2) {
            v.push((b, n));
            from = b + n as u64;
        }
        v
    };
    assert_eq!(runs, [(1, 2), (5, 2), (7, 1), (63, 2), (197, 1)]);
    assert_eq!(next_run(&map, 0, 100), Some((1, 2)));
    assert_eq!(next_run(&map, 63, 100), Some((63, 2)));
    assert_eq!(next_run(&map, 198, 100), None);
    assert_eq!(next_run(&[], 0, 1), None);
    assert_eq!(
        set_bits(&map).collect::<Vec<_>>(),
        [1, 2, 5, 6, 7, 63, 64, 197]
    );
}

#[test]
fn resync_source_rules() {
    let mut h = LogHeader::new(UUID, 8192, 10, 3);
    h.generation = 9;
    assert_eq!(
        resync_source(Some(&h), &[true, true, true], 2),
        ResyncSource::Leg(2)
    );
    h.leg_states[2] = LegState::Degraded;
    h.stale_since[2] = 3;
    assert_eq!(
        resync_source(Some(&h), &[true, true, true], 2),
        ResyncSource::Leg(0)
    );
    assert_eq!(
        resync_source(Some(&h), &[false, true, true], 2),
        ResyncSource::Leg(1)
    );
    assert_eq!(
        resync_source(Some(&h), &[false, false, true], 2),
        ResyncSource::NoneInSync
    );
    assert_eq!(
        resync_source(Some(&h), &[true, true, true], 7),
        ResyncSource::Leg(0)
    );
}
