-- The data sources cifar10(), idx(), synthetic() and the functions png_*, pixel_hash, image_digest,
-- disk_usage, file_bytes: real files in their real formats, written by make_fixtures.py.
-- shell: /usr/bin/python3 {tests}/make_fixtures.py

-- CIFAR-10: planes R, G, B become interleaved HWC; ids in file order; labels are the first byte.
-- expect: 10|0|9
SELECT count(*), min(id), max(id) FROM cifar10('cifar-10-batches-bin/data_batch_1.bin');
-- Pixel p of record i: R = (i + p) % 256, G = (2i + p) % 256, B = (3i + p) % 256.
-- expect: 10
WITH RECURSIVE p(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM p WHERE k < 1023)
SELECT count(*) FROM cifar10('cifar-10-batches-bin/data_batch_1.bin') AS c
 WHERE c.label = c.id % 10 AND length(c.pixels) = 3072
   AND hex(c.pixels) = (SELECT group_concat(printf('%02X%02X%02X', (c.id + k) % 256, (2 * c.id + k) % 256, (3 * c.id + k) % 256), '') FROM p);
-- A directory: all data_batch_*.bin in order, continuing ids; split='test' and split='all'; id_offset.
-- expect: 30|0|29|1
SELECT count(*), min(id), max(id), sum(label = id % 10) = 30 FROM cifar10('cifar-10-batches-bin');
-- expect: 5|10|4
SELECT count(*), sum(label), max(id) FROM cifar10('cifar-10-batches-bin', 0, 'test');
-- expect: 35|1000|1034
SELECT count(*), min(id), max(id) FROM cifar10('cifar-10-batches-bin', 1000, 'all');
-- gzip input, and CIFAR-100 (coarse byte, fine byte: the fine label is used).
-- expect: 7
SELECT count(*) FROM cifar10('one_batch.bin.gz');
-- expect: 6|15
SELECT count(*), sum(label) FROM cifar10('cifar100.bin', 0, NULL, 'cifar100');
-- A conversion is one statement.
CREATE VIRTUAL TABLE c USING lmdb(path='cifar.lmdb', shape='32x32x3');
INSERT INTO c SELECT * FROM cifar10('cifar-10-batches-bin');
-- expect: 1
SELECT (SELECT image_digest(id, label, pixels) FROM c) = (SELECT image_digest(id, label, pixels) FROM cifar10('cifar-10-batches-bin'));
-- error: cifar10(): 'bad_length.bin' is 9221 bytes, not a multiple of the 3073-byte record
SELECT count(*) FROM cifar10('bad_length.bin');
-- error: cifar10(): 'bad_label.bin' record 0 has label 12; expected 0 to 9
SELECT count(*) FROM cifar10('bad_label.bin');
-- error: cannot open 'nope.bin': No such file or directory
SELECT count(*) FROM cifar10('nope.bin');
-- error: cifar10(): split 'dev' is not valid; expected 'train', 'test' or 'all'
SELECT count(*) FROM cifar10('cifar-10-batches-bin', 0, 'dev');
-- id_offset is checked before any arithmetic on it, and ids never pass INT64_MAX (they used to wrap around to
-- negative ids).
-- shell: head -c 9219 /dev/zero > three.bin
-- expect: 3|9223372036854775805|9223372036854775807
SELECT count(*), min(id), max(id) FROM cifar10('three.bin', 9223372036854775805);
-- error: cifar10(): id_offset 9223372036854775806: the id of record 2 of 'three.bin' would pass 9223372036854775807, the largest id; expected an id_offset that leaves room for every record
SELECT count(*) FROM cifar10('three.bin', 9223372036854775806);
-- error: cifar10(): id_offset 9223372036854775807: the id of record 1 of 'three.bin' would pass
SELECT max(id) FROM cifar10('three.bin', 9223372036854775807);
-- error: cifar10(): id_offset -9223372036854775808 is negative; expected >= 0
SELECT count(*) FROM cifar10('three.bin', -9223372036854775808);
-- error: cifar10(): id_offset -1 is negative; expected >= 0
SELECT count(*) FROM cifar10('three.bin', -1);
-- error: cifar10(): argument 'path' is required
SELECT count(*) FROM cifar10;

-- IDX, plain and gzip: the same rows.
-- expect: 12|5x4x1|1
SELECT count(*), '5x4x1', sum(length(pixels) = 20) = 12 FROM idx('small-images.idx', 'small-labels.idx');
-- expect: 1
SELECT (SELECT image_digest(id, label, pixels) FROM idx('small-images.idx', 'small-labels.idx'))
     = (SELECT image_digest(id, label, pixels) FROM idx('small-images.idx.gz', 'small-labels.idx.gz'));
-- Pixel p of image i is (7i + p) % 256, label i % 10.
-- expect: 15161718191A1B1C1D1E1F202122232425262728|3
SELECT hex(pixels), label FROM idx('small-images.idx', 'small-labels.idx') WHERE id = 3 AND 1;
-- error: idx(): 'truncated-images.idx' is 249 bytes but its header declares 12 records of 20 bytes (256 bytes); the file is truncated
SELECT count(*) FROM idx('truncated-images.idx', 'small-labels.idx');
-- error: the file is oversized
SELECT count(*) FROM idx('oversized-images.idx', 'small-labels.idx');
-- error: idx(): 'oversized-images.idx.gz' has data after the 12 records its header declares (oversized)
SELECT count(*) FROM idx('oversized-images.idx.gz', 'small-labels.idx.gz');
-- error: 'truncated-images.idx.gz' is truncated
SELECT count(*) FROM idx('truncated-images.idx.gz', 'small-labels.idx.gz');
-- error: idx(): 'wrong-magic.idx' has magic 305399811; expected an IDX file
SELECT count(*) FROM idx('wrong-magic.idx', 'small-labels.idx');
-- error: idx(): 'wrong-type.idx' holds IDX element type 13; expected 8 (unsigned byte)
SELECT count(*) FROM idx('wrong-type.idx', 'small-labels.idx');
-- error: idx(): 'small-images.idx' declares 12 images but 'labels-11.idx' declares 11 labels; expected the same count
SELECT count(*) FROM idx('small-images.idx', 'labels-11.idx');
-- error: idx(): 'huge-header.idx': shape '2147483648x2147483648x1' is larger than 64 MiB per image
SELECT count(*) FROM idx('huge-header.idx', 'small-labels.idx');
-- error: idx(): 'huge-count.idx' is 800 bytes but its header declares 4294967295 records of 784 bytes
SELECT count(*) FROM idx('huge-count.idx', 'small-labels.idx');
-- error: 'corrupt.idx.gz' is corrupt
SELECT count(*) FROM idx('corrupt.idx.gz', 'small-labels.idx.gz');
-- error: idx(): 'empty.idx' is empty; expected an IDX file
SELECT count(*) FROM idx('empty.idx', 'small-labels.idx');
-- error: idx(): argument 'labels' is required
SELECT count(*) FROM idx('small-images.idx');

-- Real data: Debian's Fashion-MNIST, 60,000 + 10,000 images of 28x28, 6,000 / 1,000 per class.
-- expect: 60000|784|6000|6000
SELECT count(*), min(length(pixels)), min(n), max(n) FROM
  (SELECT pixels, count(*) OVER (PARTITION BY label) AS n FROM idx('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz', '/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz'));
-- expect: 10000|10
SELECT count(*), count(DISTINCT label) FROM idx('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz', '/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz');

-- dataset(): a source by its path, n rows with ids 0..n-1, started over every `every` rows.
-- Row 60,005 of Fashion-MNIST's training images is image 5 again (the directory holds 60,000).
-- expect: 60010|59999|0|1
SELECT count(*), max(id) - 10, min(id),
       (SELECT pixels FROM dataset('/usr/share/datasets/fashion-mnist', 60010) WHERE id = 60005)
     = (SELECT pixels FROM idx('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz', '/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz') WHERE id = 5)
  FROM dataset('/usr/share/datasets/fashion-mnist', 60010);
-- With every = 4, image 9 is image 1 (9 = 2 * 4 + 1); ids still run on.
-- expect: 10|9|1
SELECT count(*), max(id),
       (SELECT image_digest(0, label, pixels) FROM dataset('/usr/share/datasets/fashion-mnist', 10, 4) WHERE id = 9)
     = (SELECT image_digest(0, label, pixels) FROM dataset('/usr/share/datasets/fashion-mnist', 2) WHERE id = 1)
  FROM dataset('/usr/share/datasets/fashion-mnist', 10, 4);
-- The training batches of a CIFAR-10 directory (30 images here), repeated past them.
-- expect: 35|1
SELECT count(*), (SELECT pixels FROM dataset('cifar-10-batches-bin', 35) WHERE id = 31)
               = (SELECT pixels FROM cifar10('cifar-10-batches-bin') WHERE id = 1) FROM dataset('cifar-10-batches-bin', 35);
-- expect: 28x28x1|32x32x3|32x32x3
SELECT dataset_shape('/usr/share/datasets/fashion-mnist'), dataset_shape('cifar-10-batches-bin'), dataset_shape('smooth');
-- expect: 1
SELECT (SELECT image_digest(id, label, pixels) FROM dataset('smooth', 50)) = (SELECT image_digest(id, label, pixels) FROM synthetic(50, '32x32x3', 1, 'smooth'));
-- error: dataset(): 'fashion-mnist' is not a data set; expected a directory of IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz), a cifar-10-batches-bin directory, 'smooth' or 'noise'
SELECT count(*) FROM dataset('fashion-mnist', 3);
-- error: dataset(): every -1 is negative; expected 0 (start over when the source ends) or a row count
SELECT count(*) FROM dataset('smooth', 3, -1);

-- synthetic(): deterministic, lazily generated; 'smooth' compresses like photos, 'noise' does not.
-- expect: 1
SELECT (SELECT image_digest(id, label, pixels) FROM synthetic(500, '32x32x3', 9))
     = (SELECT image_digest(id, label, pixels) FROM synthetic(500, '32x32x3', 9));
-- expect: 0
SELECT (SELECT image_digest(id, label, pixels) FROM synthetic(500, '32x32x3', 9))
     = (SELECT image_digest(id, label, pixels) FROM synthetic(500, '32x32x3', 10));
-- The same bytes on every machine: this digest is fixed.
-- expect: 3:a5f3ba73bf5b82fd
SELECT image_digest(id, label, pixels) FROM synthetic(3, '4x4x3', 1);
-- expect: 1|1
SELECT avg(length(png_encode(pixels, '32x32x3', 6))) < 2000, avg(length(png_encode(p2, '32x32x3', 6))) > 3072
  FROM (SELECT s.pixels, n.pixels AS p2 FROM synthetic(50, '32x32x3', 1, 'smooth') s JOIN synthetic(50, '32x32x3', 1) n USING (id));
-- expect: 0|9
SELECT min(label), max(label) FROM synthetic(1000);
-- error: synthetic(): n -1 is negative; expected n >= 0
SELECT count(*) FROM synthetic(-1);
-- error: synthetic(): shape: '3x3' is not a shape
SELECT count(*) FROM synthetic(1, '3x3');
-- error: synthetic(): kind 'stripes' is not valid; expected 'noise' or 'smooth'
SELECT count(*) FROM synthetic(1, '3x3x1', 0, 'stripes');

-- png_encode / png_decode / png_shape round-trip every channel count.
-- expect: 1|1|1|1
SELECT png_decode(png_encode(a.pixels, '8x6x1')) = a.pixels, png_decode(png_encode(b.pixels, '8x6x2', 0)) = b.pixels,
       png_decode(png_encode(c.pixels, '8x6x3', 9)) = c.pixels, png_shape(png_encode(d.pixels, '8x6x4')) = '8x6x4'
  FROM synthetic(1, '8x6x1') a, synthetic(1, '8x6x2') b, synthetic(1, '8x6x3') c, synthetic(1, '8x6x4') d;
-- error: png_decode(): not a readable PNG
SELECT png_decode(randomblob(100));
-- error: png_decode(): corrupt PNG
SELECT png_decode(substr(png_encode(pixels, '32x32x3'), 1, 300)) FROM synthetic(1, '32x32x3', 1, 'smooth');
-- error: png_decode(): shape '100000x100000x3' is larger than 64 MiB per image
SELECT png_decode(readfile('bomb.png'));
-- error: png_encode(): pixels are 5 bytes; expected 12 for shape 2x2x3
SELECT png_encode(x'0102030405', '2x2x3');
-- error: png_encode(): compression level 12 is out of range; expected 0 to 9
SELECT png_encode(zeroblob(12), '2x2x3', 12);
-- error: png_decode(): png must be a blob
SELECT png_decode('text');
-- expect: 1
SELECT png_decode(NULL) IS NULL;

-- pixel_hash is XXH64 with seed 0 (the empty input's XXH64 is ef46db3751d8e999).
-- expect: 1
SELECT pixel_hash(x'') = 0xef46db3751d8e999;
-- image_digest is order-independent and sees a changed label or byte.
-- expect: 1|0|0
SELECT (SELECT image_digest(id, label, pixels) FROM (SELECT * FROM synthetic(100) ORDER BY random()))
       = (SELECT image_digest(id, label, pixels) FROM synthetic(100)),
       (SELECT image_digest(id, CASE WHEN id = 5 THEN label + 1 ELSE label END, pixels) FROM synthetic(100))
       = (SELECT image_digest(id, label, pixels) FROM synthetic(100)),
       (SELECT image_digest(id, label, CASE WHEN id = 5 THEN zeroblob(3072) ELSE pixels END) FROM synthetic(100))
       = (SELECT image_digest(id, label, pixels) FROM synthetic(100));

-- disk_usage counts allocated blocks, file_bytes the apparent size.
-- shell: head -c 10000 /dev/zero > f10k && mkdir -p tree/sub && head -c 5000 /dev/zero > tree/sub/a && head -c 3000 /dev/zero > tree/b
-- expect: 10000|1|8000|1
SELECT file_bytes('f10k'), disk_usage('f10k') >= 10000, file_bytes('tree'), disk_usage('tree') >= 8000;
-- error: disk_usage(): cannot stat 'nothing-here': No such file or directory
SELECT disk_usage('nothing-here');

-- Every source has the hidden columns height, width, channels (each row's shape), after its arguments, so a
-- source of many sizes (image_folder) and one of one size feed the same INSERT. SELECT * is still id, label,
-- pixels.
-- expect: 32|32|3|30
SELECT min(height), max(width), min(channels), count(*) FROM cifar10('cifar-10-batches-bin') WHERE channels = 3;
-- expect: 5|4|1|12
SELECT height, width, channels, count(*) FROM idx('small-images.idx', 'small-labels.idx');
-- expect: 28|28|1|7x3x2|7|3|2
SELECT d.height, d.width, d.channels, s.shape, s.height, s.width, s.channels
  FROM dataset('/usr/share/datasets/fashion-mnist', 1) d, synthetic(1, '7x3x2') s;
-- expect: 3
SELECT count(*) FROM pragma_table_info('synthetic');
CREATE TABLE shaped(id INTEGER PRIMARY KEY, label INTEGER, pixels BLOB, height INTEGER, width INTEGER, channels INTEGER);
INSERT INTO shaped(id, label, pixels, height, width, channels)
  SELECT id, label, pixels, height, width, channels FROM cifar10('cifar-10-batches-bin', 0, 'test');
INSERT INTO shaped(id, label, pixels, height, width, channels)
  SELECT id + 100, label, pixels, height, width, channels FROM synthetic(2, '6x5x4', 3);
-- expect: 32x32x3|5|1
-- expect: 6x5x4|2|1
SELECT height || 'x' || width || 'x' || channels, count(*), min(length(pixels) = height * width * channels)
  FROM shaped GROUP BY 1 ORDER BY 1;
-- An argument past the source's own falls on the hidden height column: a filter, as WHERE height = 9 is.
-- expect: 0
SELECT count(*) FROM synthetic(3, '2x2x1', 1, 'noise', 10, 9);
