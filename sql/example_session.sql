-- A first session, runnable as is from the project root: sqlite3 < sql/example_session.sql
.load ./build/imgstore
.headers on
.mode column
-- Stores in a scratch directory.
.shell mkdir -p /tmp/imgstore-example && rm -rf /tmp/imgstore-example/*
CREATE VIRTUAL TABLE temp.fashion USING lmdb(path='/tmp/imgstore-example/fashion.lmdb', shape='28x28x1');
INSERT INTO fashion SELECT * FROM idx('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz',
                                      '/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz');
SELECT label, count(*) AS images FROM fashion GROUP BY label;
SELECT id, label, length(pixels) AS bytes, pixel_hash(pixels) AS xxh64 FROM fashion WHERE id IN (0, 1, 2);
-- Convert to HDF5 and to a directory of PNG files, then compare sizes.
CREATE VIRTUAL TABLE temp.fashion_h5 USING hdf5(path='/tmp/imgstore-example/fashion.h5', shape='28x28x1');
INSERT INTO fashion_h5 SELECT * FROM fashion;
CREATE VIRTUAL TABLE temp.fashion_png USING png_dir(path='/tmp/imgstore-example/fashion_png', shape='28x28x1');
INSERT INTO fashion_png SELECT * FROM fashion WHERE id < 1000;
SELECT 'lmdb' AS store, disk_usage('/tmp/imgstore-example/fashion.lmdb') AS bytes_on_disk
UNION ALL SELECT 'hdf5', disk_usage('/tmp/imgstore-example/fashion.h5')
UNION ALL SELECT 'png_dir (1,000 images)', disk_usage('/tmp/imgstore-example/fashion_png');
SELECT (SELECT image_digest(id, label, pixels) FROM fashion) = (SELECT image_digest(id, label, pixels) FROM fashion_h5) AS same_images;
-- Each label's mean image (float32 and uint8), and the first 40 images as one PNG, 8 a row.
SELECT label, length(image_mean(pixels, '28x28x1')) AS float32_bytes, length(image_mean(pixels, '28x28x1', 1)) AS uint8_bytes
  FROM fashion GROUP BY label LIMIT 2;
SELECT writefile('/tmp/imgstore-example/grid.png', image_grid(pixels, '28x28x1', 8)) AS png_bytes
  FROM (SELECT pixels FROM fashion LIMIT 40);
