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
    let mut out = vec![0u8; log_bytes_needed(h.nr_regions) as usize];
    let n = encode(h, bits, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

fn dec(buf: &[u8]) -> Result<(LogHeader, Vec<u64>), LogError> {
    let mut bits = vec![0u64; 1 << 12];
    let h = decode(buf, &mut bits)?;
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
    assert_eq!(log_bytes_needed(0), 4096);
    assert_eq!(log_bytes_needed(1), 8192);
    assert_eq!(log_bytes_needed(4096 * 8), 8192);
    assert_eq!(log_bytes_needed(4096 * 8 + 1), 12288);
    assert_eq!(max_regions_for(0), 0);
    assert_eq!(max_regions_for(8191), 0);
    assert_eq!(max_regions_for(8192), 4096 * 8);
    assert_eq!(max_regions_for(u64::MAX), MAX_REGIONS);
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
    assert_eq!(encode(&h, &bits, &mut out), Err(LogError::BadGeometry));
    let mut h = header(100);
    h.region_size = 1000;
    assert_eq!(encode(&h, &bits, &mut out), Err(LogError::BadGeometry));
    let mut h = header(100);
    h.leg_states[0] = LegState::Degraded;
    assert_eq!(encode(&h, &bits, &mut out), Err(LogError::BadLegState));
    let mut h = header(100);
    h.generation = 0;
    assert_eq!(encode(&h, &bits, &mut out), Err(LogError::BadLegState));
    let h = header(100);
    assert_eq!(
        encode(&h, &bits[..1], &mut out),
        Err(LogError::BitmapTooSmall)
    );
    assert_eq!(
        encode(&h, &bits, &mut out[..8191]),
        Err(LogError::BufferTooSmall)
    );
    let e = LogError::UnsupportedVersion(9);
    assert_eq!(
        e.reason().to_str().unwrap(),
        "unsupported log format version"
    );
    assert_eq!(
        e.to_string(),
        "unsupported log format version 9 (expected 1)"
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
    assert_eq!(decode(&buf, &mut small), Err(LogError::BitmapTooSmall));
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
        let _ = decode(&buf, &mut bits);
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
        if let Ok(h2) = decode(&buf, &mut bits) {
            prop_assert!(h2.validate().is_ok());
        }
    }
}

fn id(nr: u64) -> LogIdentity {
    LogIdentity {
        uuid: UUID,
        region_size: 8192,
        nr_regions: nr,
        nr_legs: 2,
    }
}

#[test]
fn choose_copies_newest_and_union() {
    let mut a = header(130);
    a.generation = 10;
    let mut b = header(130);
    b.generation = 12;
    b.leg_states[1] = LegState::Degraded;
    b.stale_since[1] = 11;
    let ba = [0b0101u64, 0, 1];
    let bb = [0b1001u64, 1 << 5, 0];
    let mut out = [0u64; 3];
    let act = choose_copies(
        &id(130),
        &[Some((a, &ba)), Some((b, &bb))],
        &mut out,
        &mut [0u64; 3],
    )
    .unwrap();
    assert_eq!(act.newest, Some(b));
    assert_eq!(act.used, 0b11);
    assert_eq!(act.max_generation, 12);
    assert_eq!(out, [0b1101, 1 << 5, 1]);
    assert_eq!(act.out_of_sync, 5);
    assert_eq!(
        resync_source(act.newest.as_ref(), &[true, true], 1),
        ResyncSource::Leg(0)
    );

    // One copy missing or foreign: the other alone.
    let mut foreign = a;
    foreign.uuid[0] ^= 1;
    foreign.generation = 99;
    let act = choose_copies(
        &id(130),
        &[Some((foreign, &ba)), Some((b, &bb))],
        &mut out,
        &mut [0u64; 3],
    )
    .unwrap();
    assert_eq!(act.newest, Some(b));
    assert_eq!(act.used, 0b10);
    assert_eq!(act.mismatched, 0b01);
    assert_eq!(act.max_generation, 99);
    assert_eq!(out, bb);

    // Nothing usable: every region out of sync, freshness unknown.
    let act = choose_copies(
        &id(130),
        &[None, Some((foreign, &ba))],
        &mut out,
        &mut [0u64; 3],
    )
    .unwrap();
    assert!(act.log_lost());
    assert_eq!(out, [u64::MAX, u64::MAX, 0b11]);
    assert_eq!(act.out_of_sync, 130);
    assert_eq!(
        resync_source(act.newest.as_ref(), &[true, true], 0),
        ResyncSource::Unknown
    );
    assert_eq!(
        choose_copies(&id(130), &[None; 9], &mut out, &mut [0u64; 3]),
        Err(LogError::TooManyCopies)
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For up to 3 copies of assorted generations, validity and bitmaps:
    /// the newest valid wins, the result is the union, and the resync
    /// source is never a leg that was not in sync in the newest copy.
    #[test]
    fn choose_copies_props(
        copies in prop::collection::vec(
            (any::<bool>(), 1u64..20, prop::array::uniform2(arb_leg()), arb_bits(100)),
            0..=3),
        primary in 0u8..2,
        avail in prop::array::uniform2(any::<bool>()),
    ) {
        let hs: Vec<(bool, LogHeader, Vec<u64>)> = copies.into_iter().map(|(valid, g, legs, bits)| {
            let mut h = header(100);
            h.generation = g;
            for i in 0..2 {
                h.leg_states[i] = legs[i];
                h.stale_since[i] = if legs[i] == LegState::InSync { 0 } else { g };
            }
            (valid, h, bits)
        }).collect();
        let input: Vec<Option<(LogHeader, &[u64])>> = hs.iter()
            .map(|(v, h, b)| v.then_some((*h, b.as_slice()))).collect();
        let mut out = vec![0u64; 2];
        let mut common = vec![0u64; 2];
        let act = choose_copies(&id(100), &input, &mut out, &mut common).unwrap();
        let valid: Vec<&(bool, LogHeader, Vec<u64>)> = hs.iter().filter(|c| c.0).collect();
        if valid.is_empty() {
            prop_assert!(act.log_lost());
            prop_assert_eq!(act.out_of_sync, 100);
        } else {
            let g = valid.iter().map(|c| c.1.generation).max().unwrap();
            prop_assert_eq!(act.newest.unwrap().generation, g);
            let mut union = vec![0u64; 2];
            for c in &valid { for i in 0..2 { union[i] |= c.2[i]; } }
            prop_assert_eq!(out.clone(), masked(union, 100));
            let mut inter = vec![u64::MAX; 2];
            for c in &hs { for i in 0..2 { inter[i] &= if c.0 { c.2[i] } else { 0 }; } }
            prop_assert_eq!(common.clone(), masked(inter, 100));
            if let ResyncSource::Leg(l) = resync_source(act.newest.as_ref(), &avail, primary) {
                prop_assert_eq!(act.newest.unwrap().leg_states[usize::from(l)], LegState::InSync);
                prop_assert!(avail[usize::from(l)]);
                if act.newest.unwrap().leg_states[usize::from(primary)] == LegState::InSync
                    && avail[usize::from(primary)] {
                    prop_assert_eq!(l, primary);
                }
            }
        }
    }
}
