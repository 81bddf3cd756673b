// SPDX-License-Identifier: GPL-2.0

#include <linux/bio.h>
#include <linux/blkdev.h>

__rust_helper void rust_helper_bio_set_dev(struct bio *bio,
					   struct block_device *bdev)
{
	bio_set_dev(bio, bdev);
}

__rust_helper sector_t rust_helper_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

__rust_helper unsigned int
rust_helper_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

__rust_helper unsigned int
rust_helper_bdev_max_discard_sectors(struct block_device *bdev)
{
	return bdev_max_discard_sectors(bdev);
}

__rust_helper unsigned int
rust_helper_bdev_write_zeroes_sectors(struct block_device *bdev)
{
	return bdev_write_zeroes_sectors(bdev);
}

/*
 * Takes a reference on a data page of a bio, so that it stays allocated after the
 * bio's originator completed it. Fails for memory whose references are not counted
 * (slab and large kmalloc allocations) or not the page allocator's (ZONE_DEVICE), and for a
 * page being freed.
 */
__rust_helper bool rust_helper_bio_data_page_get(struct page *page)
{
	struct folio *folio = page_folio(page);

	if (folio_test_slab(folio) || folio_test_large_kmalloc(folio) ||
	    folio_is_zone_device(folio))
		return false;
	return folio_try_get(folio);
}

__rust_helper void rust_helper_bio_data_page_put(struct page *page)
{
	folio_put(page_folio(page));
}
