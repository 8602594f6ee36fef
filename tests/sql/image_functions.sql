-- The pixel maths aggregates image_mean(pixels, shape [, as_uint8]) and image_grid(pixels, shape, columns
-- [, padding]): values worked out by hand, NULLs and empty input as avg() has them, the errors verbatim, and
-- numpy and Pillow reading the same images (image_functions_check.py).

-- The mean of (0, 1) and (1, 2): 0.5 and 1.5 as float32 little-endian (0x3F000000, 0x3FC00000); as uint8
-- rounded half up, 1 and 2.
-- expect: 0000003F0000C03F|0102
SELECT hex(image_mean(pixels, '1x1x2')), hex(image_mean(pixels, '1x1x2', 1))
  FROM (SELECT x'0001' AS pixels UNION ALL SELECT x'0102');
-- NULL pixels are skipped; no rows, or only NULLs, give NULL.
-- expect: 0102|1
SELECT hex(image_mean(pixels, '1x1x2', 1)), count(*) = 3
  FROM (SELECT x'0001' AS pixels UNION ALL SELECT NULL UNION ALL SELECT x'0102');
-- expect: 1|1|1|1
SELECT image_mean(pixels, '1x1x1') IS NULL, image_grid(pixels, '1x1x1', 2) IS NULL,
       (SELECT image_mean(pixels, '1x1x1') IS NULL FROM (SELECT x'01' AS pixels WHERE 0)),
       (SELECT image_grid(pixels, '1x1x1', 2) IS NULL FROM (SELECT x'01' AS pixels WHERE 0))
  FROM (SELECT NULL AS pixels);
-- One image: its mean is the image itself (uint8), its grid is its png_encode.
-- expect: 1|1|12288
SELECT image_mean(pixels, '32x32x3', 1) = pixels, image_grid(pixels, '32x32x3', 1) = png_encode(pixels, '32x32x3'),
       length(image_mean(pixels, '32x32x3'))
  FROM synthetic(1, '32x32x3', 2, 'smooth');
-- Per label, and the mean image as a PNG.
-- expect: 0|3072|1
-- expect: 1|3072|1
-- expect: 2|3072|1
SELECT label, length(image_mean(pixels, '32x32x3', 1)), png_shape(png_encode(image_mean(pixels, '32x32x3', 1), '32x32x3')) = '32x32x3'
  FROM synthetic(90, '32x32x3', 1, 'noise', 3) GROUP BY label;
-- 40 images of 16x16x3 in 8 columns: 128 wide, 80 high; a padding of 2 between tiles (not around them);
-- an unfinished last row is as tall as the others.
-- expect: 80x128x3|88x142x3|16x128x3|80x16x1
SELECT (SELECT png_shape(image_grid(pixels, '16x16x3', 8)) FROM synthetic(40, '16x16x3', 1)),
       (SELECT png_shape(image_grid(pixels, '16x16x3', 8, 2)) FROM synthetic(33, '16x16x3', 1)),
       (SELECT png_shape(image_grid(pixels, '16x16x3', 8)) FROM synthetic(1, '16x16x3', 1)),
       (SELECT png_shape(image_grid(pixels, '16x16x1', 1)) FROM synthetic(5, '16x16x1', 1));
-- The grid's tiles in the order rows come: the first tile of a grid of images sorted by id descending is the
-- last image.
-- expect: 1
SELECT substr(png_decode(image_grid(pixels, '4x4x1', 2)), 1, 4)
     = (SELECT substr(pixels, 1, 4) FROM synthetic(6, '4x4x1', 1) WHERE id = 5)
  FROM (SELECT pixels FROM synthetic(6, '4x4x1', 1) ORDER BY id DESC);

-- Errors name the function, the value and what was expected.
-- error: image_mean(): pixels of 100 bytes; expected 3072 (shape 32x32x3, HWC uint8)
SELECT image_mean(zeroblob(100), '32x32x3');
-- error: image_grid(): pixels of 3 bytes; expected 768 (shape 16x16x3, HWC uint8)
SELECT image_grid(pixels, '16x16x3', 8) FROM (SELECT zeroblob(768) AS pixels UNION ALL SELECT x'010203');
-- error: image_mean(): pixels must be a blob
SELECT image_mean('text', '1x1x4');
-- error: image_mean(): shape must be text
SELECT image_mean(x'00', 1);
-- error: image_mean(): shape: 'big' is not a shape; expected HxWxC with positive integers, e.g. '32x32x3'
SELECT image_mean(x'00', 'big');
-- error: image_mean(): as_uint8 2; expected 0 (float32) or 1 (uint8)
SELECT image_mean(x'00', '1x1x1', 2);
-- error: image_mean(): as_uint8 must be an integer
SELECT image_mean(x'00', '1x1x1', 'yes');
-- error: image_grid(): columns 0; expected a positive number of images per row
SELECT image_grid(x'00', '1x1x1', 0);
-- error: image_grid(): padding -1; expected 0 or more pixels between images
SELECT image_grid(x'00', '1x1x1', 1, -1);
-- error: image_grid(): columns must be an integer
SELECT image_grid(x'00', '1x1x1', 2.5);
-- The arguments besides pixels are the first row's for every row (a shape spelled differently is the same).
-- expect: 1
SELECT image_mean(pixels, CASE id WHEN 2 THEN '8X8x3' ELSE '8x8x3' END) IS NOT NULL FROM synthetic(4, '8x8x3', 1);
-- error: image_mean(): shape '8x8x1' differs from the first row's '8x8x3'; expected one shape for all images
SELECT image_mean(pixels, CASE id WHEN 2 THEN '8x8x1' ELSE '8x8x3' END) FROM synthetic(4, '8x8x3', 1);
-- error: image_grid(): columns 3 differs from the first row's 2; expected the same for every row
SELECT image_grid(pixels, '8x8x3', 2 + (id = 3)) FROM synthetic(4, '8x8x3', 1);
-- The output is capped at 64 MiB of pixels, before anything is allocated for the row of tiles past it.
-- error: image_grid(): a row of 100 images of 1024x1024x3 with padding 0 is over 64 MiB; expected a grid of at most 64 MiB of pixels
SELECT image_grid(zeroblob(3145728), '1024x1024x3', 100);
-- error: image_grid(): image 21825 begins row 342 of the grid, making it 10944x2048x3; expected a grid of at most 64 MiB of pixels (fewer images, e.g. a LIMIT)
SELECT image_grid(pixels, '32x32x3', 64) FROM synthetic(30000, '32x32x3', 1);
-- error: image_mean() may not be used as a window function
SELECT image_mean(x'00', '1x1x1') OVER ();

-- Pure (INNOCUOUS): usable in a view even when the schema is not trusted.
PRAGMA trusted_schema = OFF;
CREATE VIEW means AS SELECT label, image_mean(pixels, '4x4x1', 1) AS mean FROM synthetic(20, '4x4x1', 1, 'noise', 2) GROUP BY label;
-- expect: 2|32
SELECT count(*), sum(length(mean)) FROM means;

-- numpy's means and Pillow's decoding of grids, on the same images.
-- shell: /usr/bin/python3 {tests}/image_functions_check.py
-- shell-expect: image_mean noise 32x32x3: 3000 images, 10 labels, the bytes of numpy's means\nimage_mean smooth 9x7x1: 500 images, 3 labels, the bytes of numpy's means\nimage_mean noise 5x6x2: 300 images, 2 labels, the bytes of numpy's means\nimage_mean noise 5x6x4: 300 images, 1 labels, the bytes of numpy's means\nimage_mean fashion-mnist test set: 10000 images, 10 labels, the bytes of numpy's means\nimage_grid 40 x 16x16x3, 8 columns, padding 0: 128x80, each tile its image\nimage_grid 37 x 16x16x3, 8 columns, padding 2: 142x88, each tile its image\nimage_grid 3 x 28x28x1, 8 columns, padding 0: 224x28, each tile its image\nimage_grid 10 x 7x5x2, 3 columns, padding 1: 17x31, each tile its image\nimage_grid 9 x 8x8x4, 4 columns, padding 3: 41x30, each tile its image
