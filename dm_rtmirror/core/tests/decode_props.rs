//! Property tests: the log decoders and `activate_copies` never panic on arbitrary bytes
//! (raw, or valid copies with bytes flipped and cut short), whatever decodes re-encodes to
//! the same bytes, and activation keeps its documented invariants. The coverage-guided
//! fuzz targets in `core/fuzz` check the same at depth (docs/testing.md, "Fuzzing").

use proptest::prelude::*;
use rtmirror_core::log_format::*;
use rtmirror_core::status::LegState;

const UUID: [u8; 16] = *b"decode-props-uid";

/// A small geometry: up to three bitmap blocks, 2 to 4 legs, any valid region size.
fn want() -> impl Strategy<Value = LogWant> {
    (
        1u64..=3 * REGIONS_PER_BLOCK,
        3u32..=21,
        2u8..=4,
        any::<bool>(),
    )
        .prop_map(|(nr_regions, shift, nr_legs, bound)| LogWant {
            uuid: bound.then_some(UUID),
            region_size: 1 << shift,
            nr_regions,
            nr_legs,
        })
}

/// A valid copy of `w` (version 1 or 2) with bits from `seed`, or arbitrary bytes.
fn copy(w: &LogWant, v1: bool, generation: u64, seed: u64) -> Vec<u8> {
    let bits: Vec<u64> = (0..bitmap_words(w.nr_regions) as u64)
        .map(|i| seed.rotate_left(i as u32) & seed.wrapping_mul(i | 1))
        .collect();
    let mut h = LogHeader::new(
        w.uuid.unwrap_or(UUID),
        w.region_size,
        w.nr_regions,
        w.nr_legs,
    );
    h.generation = generation;
    if seed.is_multiple_of(3) {
        h.leg_states[1] = LegState::Resyncing;
        h.stale_since[1] = generation;
    }
    h.clean_shutdown = seed.is_multiple_of(5);
    if v1 {
        let mut out = vec![0u8; log_bytes_v1(w.nr_regions) as usize];
        encode_v1(&h, &bits, &mut out).unwrap();
        return out;
    }
    let mut out = vec![0u8; log_bytes_needed(w.nr_regions) as usize];
    let slot = (generation % 2) as usize;
    encode_header(&h, &mut out[slot * HEADER_BYTES..]).unwrap();
    for b in 0..bitmap_blocks(w.nr_regions) {
        let pos = (bitmap_block_pos(b) * LOG_BLOCK_BYTES) as usize;
        encode_bitmap_block(&h.uuid, generation, w.nr_regions, b, &bits, &mut out[pos..]).unwrap();
    }
    out
}

/// Flips bytes and cuts the copy short.
fn damage(mut c: Vec<u8>, flips: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let len = c.len();
    for &(i, x) in flips {
        c[i % len] ^= x;
    }
    if let Some(n) = cut {
        c.truncate(n % (len + 1));
    }
    c
}

/// Every decoder over `buf`; what decodes must re-encode to the same bytes.
fn check_decoders(buf: &[u8], w: &LogWant) {
    let mut bm = vec![0u64; buf.len() / 8 + 1];
    if let Ok(h) = decode_v1(buf, &mut bm) {
        let total = log_bytes_v1(h.nr_regions) as usize;
        let mut out = vec![0u8; total];
        assert_eq!(encode_v1(&h, &bm, &mut out), Ok(total));
        assert!(
            out == buf[..total],
            "v1 copy does not re-encode to the same bytes"
        );
    }
    let mut uuids = vec![w.uuid.unwrap_or(UUID)];
    for slot in 0..2 {
        let Some(block) = buf.get(slot * HEADER_BYTES..) else {
            continue;
        };
        if let Ok(h) = decode_header(block) {
            let mut out = vec![0u8; HEADER_BYTES];
            encode_header(&h, &mut out).unwrap();
            assert!(
                out == block[..HEADER_BYTES],
                "header slot {slot} does not re-encode"
            );
            uuids.push(h.uuid);
        }
    }
    let mut bm = vec![0u64; bitmap_words(w.nr_regions)];
    for uuid in uuids {
        for b in 0..bitmap_blocks(w.nr_regions) + 1 {
            let pos = (bitmap_block_pos(b) * LOG_BLOCK_BYTES) as usize;
            let block = buf.get(pos..).unwrap_or(&[]);
            bm.fill(0x5555_5555_5555_5555);
            let before = bm.clone();
            match decode_bitmap_block(&uuid, w.nr_regions, b, block, &mut bm) {
                Ok(g) => {
                    let mut out = vec![0u8; LOG_BLOCK_BYTES as usize];
                    encode_bitmap_block(&uuid, g, w.nr_regions, b, &bm, &mut out).unwrap();
                    assert!(out == block[..out.len()], "block {b} does not re-encode");
                }
                Err(_) => assert!(bm == before, "a failed block decode changed the bitmap"),
            }
        }
    }
}

/// `activate_copies` and the invariants it documents.
fn check_activation(w: &LogWant, copies: &[Option<&[u8]>]) {
    let words = bitmap_words(w.nr_regions);
    let mut u = vec![7u64; words + 1];
    let mut c = vec![9u64; words + 1];
    let act = activate_copies(w, copies, &mut u, &mut c).unwrap();
    assert_eq!((u[words], c[words]), (7, 9), "written past the bitmaps");
    let (u, c) = (&u[..words], &c[..words]);
    assert!(
        u.iter().zip(c).all(|(u, c)| c & !u == 0),
        "common not in union"
    );
    if !w.nr_regions.is_multiple_of(64) {
        let r = w.nr_regions % 64;
        assert_eq!(u[words - 1] >> r, 0, "union bits beyond the last region");
        assert_eq!(c[words - 1] >> r, 0, "common bits beyond the last region");
    }
    let ones: u64 = u.iter().map(|x| u64::from(x.count_ones())).sum();
    assert_eq!(act.out_of_sync, ones);
    for (i, class) in act.classes.iter().enumerate() {
        match copies.get(i) {
            None => assert_eq!(*class, CopyClass::Absent),
            Some(None) => assert_eq!(*class, CopyClass::Unreadable),
            Some(Some(_)) => assert!(*class != CopyClass::Absent),
        }
    }
    if act.classes[..copies.len()].iter().any(|c| !c.used()) {
        assert!(
            c.iter().all(|&x| x == 0),
            "common not empty with a copy not used"
        );
    }
    match act.newest {
        Some(h) => {
            assert_eq!(act.outcome, LogOutcome::Found);
            assert_eq!(h.validate(), Ok(()));
            assert_eq!(act.max_generation, h.generation);
            assert_eq!((h.nr_regions, h.nr_legs), (w.nr_regions, w.nr_legs));
            if let Some(uuid) = w.uuid {
                assert_eq!(h.uuid, uuid);
            }
            if act.clean {
                assert_eq!(ones, 0, "clean shutdown with regions out of sync");
            }
        }
        None => {
            assert_ne!(act.outcome, LogOutcome::Found);
            assert_eq!(
                ones, w.nr_regions,
                "no log but not every region out of sync"
            );
            assert!(c.iter().all(|&x| x == 0), "no log but common not empty");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn raw_bytes_never_panic(
        w in want(),
        bytes in prop::collection::vec(any::<u8>(), 0..10_000),
        unreadable in any::<bool>(),
    ) {
        check_decoders(&bytes, &w);
        check_activation(&w, &[Some(&bytes)]);
        let second = if unreadable { None } else { Some(&bytes[..bytes.len() / 2]) };
        check_activation(&w, &[Some(&bytes), second]);
    }

    #[test]
    fn damaged_copies_never_panic(
        w in want(),
        copies in prop::collection::vec(
            (
                any::<bool>(),
                1u64..20,
                any::<u64>(),
                prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
                prop::option::of(any::<usize>()),
                any::<bool>(),
            ),
            0..4,
        ),
    ) {
        let images: Vec<Option<Vec<u8>>> = copies
            .iter()
            .map(|(v1, gen, seed, flips, cut, unreadable)| {
                (!unreadable).then(|| damage(copy(&w, *v1, *gen, *seed), flips, *cut))
            })
            .collect();
        for img in images.iter().flatten() {
            check_decoders(img, &w);
        }
        let refs: Vec<Option<&[u8]>> = images.iter().map(|i| i.as_deref()).collect();
        check_activation(&w, &refs);
    }

    #[test]
    fn intact_copy_activates_to_its_bits(w in want(), v1 in any::<bool>(), gen in 1u64..20, seed in any::<u64>()) {
        let img = copy(&w, v1, gen, seed);
        check_decoders(&img, &w);
        check_activation(&w, &[Some(&img)]);
        let words = bitmap_words(w.nr_regions);
        let (mut u, mut c) = (vec![0u64; words], vec![0u64; words]);
        let act = activate_copies(&w, &[Some(&img)], &mut u, &mut c).unwrap();
        prop_assert_eq!(act.outcome, LogOutcome::Found);
        prop_assert_eq!(act.bad_blocks, 0);
        prop_assert_eq!(act.newest.map(|h| h.generation), Some(gen));
        prop_assert_eq!(&u, &c);
    }
}
