-- image_folder(root [, shape, threads]) and image_folder_classes(root): a folder laid out as torchvision's
-- ImageFolder reads it, written here by the extension's own png_encode and jpeg_encode (the Python suite,
-- tests/python/test_image_folder.py, checks the same against torchvision and Pillow on files Pillow wrote); and
-- the JPEG functions jpeg_encode, jpeg_decode, jpeg_shape.

-- A tree: classes in name order (bird, cat, dog, empty), nested folders, 'sub-x' which sorts between 'sub' and
-- 'sub/deeper' as ImageFolder's sorted(os.walk()) puts it, an upper-case .JPG, a .txt that is not listed, a
-- folder with a space, an empty class.
-- shell: mkdir -p pets/bird pets/cat/sub/deeper pets/cat/sub-x 'pets/dog/a b' pets/empty && echo hi > pets/cat/notes.txt
SELECT writefile('pets/bird/x.png', png_encode(pixels, '3x3x3')) FROM synthetic(1, '3x3x3', 1);
SELECT writefile('pets/cat/a.png', png_encode(pixels, '10x12x3')) FROM synthetic(1, '10x12x3', 2, 'smooth');
SELECT writefile('pets/cat/b.JPG', jpeg_encode(pixels, '37x23x3')) FROM synthetic(1, '37x23x3', 3, 'smooth');
SELECT writefile('pets/cat/sub/c.png', png_encode(pixels, '5x5x1')) FROM synthetic(1, '5x5x1', 4);
SELECT writefile('pets/cat/sub-x/d.jpeg', jpeg_encode(pixels, '9x9x1', 90)) FROM synthetic(1, '9x9x1', 5, 'smooth');
SELECT writefile('pets/cat/sub/deeper/e.png', png_encode(pixels, '7x3x4')) FROM synthetic(1, '7x3x4', 6);
SELECT writefile('pets/dog/z.png', png_encode(pixels, '4x4x2')) FROM synthetic(1, '4x4x2', 7);
SELECT writefile('pets/dog/a b/y.jpg', jpeg_encode(pixels, '16x16x3', 50)) FROM synthetic(1, '16x16x3', 8, 'smooth');

-- ids in ImageFolder's order, labels its class indices, paths as its samples name them; each image keeps its
-- own size and channels.
-- expect: 0|0|bird|pets/bird/x.png|3|3|3
-- expect: 1|1|cat|pets/cat/a.png|10|12|3
-- expect: 2|1|cat|pets/cat/b.JPG|37|23|3
-- expect: 3|1|cat|pets/cat/sub/c.png|5|5|1
-- expect: 4|1|cat|pets/cat/sub-x/d.jpeg|9|9|1
-- expect: 5|1|cat|pets/cat/sub/deeper/e.png|7|3|4
-- expect: 6|2|dog|pets/dog/z.png|4|4|2
-- expect: 7|2|dog|pets/dog/a b/y.jpg|16|16|3
SELECT id, label, class, path, height, width, channels FROM image_folder('pets');
-- The classes, the empty one too: it keeps its label and has no rows.
-- expect: 0|bird
-- expect: 1|cat
-- expect: 2|dog
-- expect: 3|empty
SELECT label, class FROM image_folder_classes('pets');
-- A trailing '/' on the root is kept as os.path.join keeps it.
-- expect: pets/bird/x.png
SELECT path FROM image_folder('pets/') WHERE id = 0;
-- SELECT * is id, label, pixels, as for every source.
CREATE TEMP VIEW every AS SELECT * FROM image_folder('pets');
-- expect: id,label,pixels
SELECT group_concat(name) FROM pragma_table_info('every');

-- PNG pixels are the encoded ones; JPEG pixels what jpeg_decode gives (Pillow's own decode: the Python suite).
-- expect: 8|8
SELECT count(*), sum(pixels = CASE WHEN path LIKE '%.png' THEN png_decode(readfile(path)) ELSE jpeg_decode(readfile(path)) END)
  FROM image_folder('pets');
-- expect: 1
SELECT (SELECT pixels FROM image_folder('pets') WHERE id = 1) = (SELECT pixels FROM synthetic(1, '10x12x3', 2, 'smooth'));
-- With a shape every image is converted and resized to it; the same rows, and the same bytes on 1 thread or 2.
-- expect: 8|24|20|3|1440
SELECT count(*), min(height), max(width), max(channels), min(length(pixels)) FROM image_folder('pets', '24x20x3');
-- expect: 1|1
SELECT (SELECT image_digest(id, label, pixels) FROM image_folder('pets', '16x16x1', 1))
     = (SELECT image_digest(id, label, pixels) FROM image_folder('pets', '16x16x1', 2)),
       (SELECT image_digest(id, label, pixels) FROM image_folder('pets', NULL, 1))
     = (SELECT image_digest(id, label, pixels) FROM image_folder('pets', 'any', 3));
-- An image already of the shape is unchanged (Pillow's resize to the same size is a copy).
-- expect: 1
SELECT (SELECT pixels FROM image_folder('pets', '10x12x3') WHERE id = 1) = (SELECT pixels FROM image_folder('pets') WHERE id = 1);
-- Into a table of images of many sizes, one statement for any source.
CREATE TABLE photos(id INTEGER PRIMARY KEY, label INTEGER, pixels BLOB, height INTEGER, width INTEGER, channels INTEGER);
INSERT INTO photos(id, label, pixels, height, width, channels)
  SELECT id, label, pixels, height, width, channels FROM image_folder('pets', NULL, 2);
-- expect: 8|8
SELECT count(*), sum(length(pixels) = height * width * channels) FROM photos;
-- Joined with its classes.
-- expect: cat|5
SELECT c.class, count(*) FROM image_folder('pets') JOIN image_folder_classes('pets') AS c USING (label)
 GROUP BY label ORDER BY count(*) DESC LIMIT 1;

-- Errors name the function, the value and what was expected.
-- error: image_folder(): argument 'root' is required
SELECT count(*) FROM image_folder;
-- error: image_folder(): cannot read the folder 'nope': No such file or directory
SELECT count(*) FROM image_folder('nope');
-- error: image_folder_classes(): cannot read the folder 'nope': No such file or directory
SELECT count(*) FROM image_folder_classes('nope');
-- error: image_folder(): the folder 'pets/bird' has no class folders; expected pets/bird/<class>/ folders of images, as torchvision's ImageFolder reads
SELECT count(*) FROM image_folder('pets/bird');
-- error: image_folder(): shape: '24x20' is not a shape; expected HxWxC with positive integers, e.g. '32x32x3', or 'any' for images of many sizes
SELECT count(*) FROM image_folder('pets', '24x20');
-- error: image_folder(): shape: shape '2x2x5' has 5 channels; expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)
SELECT count(*) FROM image_folder('pets', '2x2x5');
-- error: image_folder(): threads 0 is out of range; expected 1 to 256
SELECT count(*) FROM image_folder('pets', NULL, 0);
-- error: image_folder(): argument threads 'two' is not an integer
SELECT count(*) FROM image_folder('pets', NULL, 'two');
-- error: image_folder(): argument root is an integer; expected text
SELECT count(*) FROM image_folder(7);
-- error: image_folder_classes(): argument 'root' must be text (a folder's path)
SELECT count(*) FROM image_folder_classes(7);

-- A file that cannot be read is an error naming it, when its pixels (or, without a shape, its size) are read;
-- SELECT count(*), id, label or path never opens a file. Cut files, formats ImageFolder lists but imgstore
-- does not decode, a missing file (a broken link), a FIFO, a folder that is a cycle.
-- shell: mkdir -p bad/x && head -c 100 pets/cat/a.png > bad/x/cut.png && head -c 300 pets/cat/b.JPG > bad/x/cut.jpg && printf 'BM\0\0\0\0' > bad/x/old.bmp && printf 'hello' > bad/x/text.png
-- expect: 4|bad/x/cut.jpg,bad/x/cut.png,bad/x/old.bmp,bad/x/text.png
SELECT count(*), group_concat(path) FROM image_folder('bad');
-- error: image_folder(): 'bad/x/cut.jpg': truncated JPEG (the data ends before the image does)
SELECT pixels FROM image_folder('bad') WHERE id = 0;
-- error: image_folder(): 'bad/x/cut.png': corrupt PNG (
SELECT length(pixels) FROM image_folder('bad', '8x8x3') WHERE id = 1;
-- error: image_folder(): 'bad/x/old.bmp' is a BMP file; imgstore reads PNG and JPEG
SELECT height FROM image_folder('bad') WHERE id = 2;
-- error: image_folder(): 'bad/x/text.png' is not an image file imgstore knows (its first bytes are 68 65 6C 6C); imgstore reads PNG and JPEG
SELECT pixels FROM image_folder('bad', NULL, 1) WHERE id = 3;
-- On the workers too, in order: the first bad row is the error.
-- error: image_folder(): 'bad/x/cut.jpg': truncated JPEG
SELECT sum(length(pixels)) FROM image_folder('bad', NULL, 4);
-- A bad file fails only a statement that reads it: a row filtered out by its path is never decoded for SQL,
-- even when a worker read it ahead with its neighbours.
-- shell: mkdir -p mixed/x && cp pets/cat/a.png mixed/x/1.png && head -c 100 pets/cat/a.png > mixed/x/2cut.png && cp pets/bird/x.png mixed/x/3.png
-- expect: 2|387
SELECT count(length(pixels)), sum(length(pixels)) FROM image_folder('mixed', NULL, 2) WHERE path NOT LIKE '%cut%';
-- shell: mkdir -p gone/x && ln -s nowhere.png gone/x/a.png && mkfifo gone/x/b.png
-- error: image_folder(): cannot open 'gone/x/a.png': No such file or directory
SELECT length(pixels) FROM image_folder('gone') WHERE id = 0;
-- error: image_folder(): 'gone/x/b.png' is not a regular file; expected a PNG or JPEG file
SELECT length(pixels) FROM image_folder('gone') WHERE id = 1;
-- shell: mkdir -p loop/x/inner && ln -s .. loop/x/inner/up
-- error: image_folder(): the folder 'loop/x/inner/up' is a folder it is inside of, reached again through a symbolic link (a cycle); expected a tree
SELECT count(*) FROM image_folder('loop');
-- A header declaring more than 64 MiB of pixels is refused before anything is allocated for it.
SELECT writefile('huge.jpg', jpeg_encode(zeroblob(64), '8x8x1'));
-- shell: /usr/bin/python3 -c "import sys; b = bytearray(open('huge.jpg','rb').read()); i = b.index(b'\xff\xc0'); b[i+5:i+9] = b'\xea\x60\xea\x60'; open('huge.jpg','wb').write(b)"
-- error: jpeg_decode(): shape '60000x60000x1' is larger than 64 MiB per image
SELECT jpeg_decode(readfile('huge.jpg'));

-- jpeg_encode / jpeg_decode / jpeg_shape: gray and RGB round-trip their shapes; the defaults are Pillow's
-- (quality 75, 4:2:0); a flat image at quality 100 comes back exact.
-- expect: 37x23x1|37x23x3|851|2553|1
SELECT jpeg_shape(jpeg_encode(a.pixels, '37x23x1')), jpeg_shape(jpeg_encode(b.pixels, '37x23x3', 95)),
       length(jpeg_decode(jpeg_encode(a.pixels, '37x23x1'))), length(jpeg_decode(jpeg_encode(b.pixels, '37x23x3'))),
       jpeg_decode(jpeg_encode(zeroblob(768), '16x16x3', 100)) = zeroblob(768)
  FROM synthetic(1, '37x23x1', 1, 'smooth') a, synthetic(1, '37x23x3', 1, 'smooth') b;
-- Deterministic and innocuous, as png_encode: usable in a generated column and in a view under trusted_schema=OFF.
CREATE TABLE j(p BLOB, shape TEXT GENERATED ALWAYS AS (jpeg_shape(p)));
INSERT INTO j(p) SELECT jpeg_encode(pixels, '4x6x3') FROM synthetic(1, '4x6x3');
PRAGMA trusted_schema = OFF;
CREATE VIEW jv AS SELECT shape, length(jpeg_decode(p)) AS n FROM j;
-- expect: 4x6x3|72
SELECT * FROM jv;
-- image_folder reads files: a view may not use it.
CREATE VIEW fv AS SELECT count(*) FROM image_folder('pets');
-- error: unsafe use of virtual table "image_folder"
SELECT * FROM fv;
PRAGMA trusted_schema = ON;
-- expect: 1
SELECT jpeg_decode(NULL) IS NULL AND jpeg_encode(NULL, '2x2x3') IS NULL AND jpeg_shape(NULL) IS NULL;
-- error: jpeg_encode(): shape 2x2x4 has 4 channels; expected 1 (gray) or 3 (RGB): JPEG has no alpha channel
SELECT jpeg_encode(zeroblob(16), '2x2x4');
-- error: jpeg_encode(): shape 2x2x2 has 2 channels; expected 1 (gray) or 3 (RGB): JPEG has no alpha channel
SELECT jpeg_encode(zeroblob(8), '2x2x2');
-- error: jpeg_encode(): pixels are 11 bytes; expected 12 for shape 2x2x3
SELECT jpeg_encode(zeroblob(11), '2x2x3');
-- error: jpeg_encode(): quality 101 is out of range; expected 1 to 100
SELECT jpeg_encode(zeroblob(12), '2x2x3', 101);
-- error: jpeg_encode(): quality must be an integer from 1 to 100
SELECT jpeg_encode(zeroblob(12), '2x2x3', 'high');
-- error: jpeg_encode(): shape: '2x2' is not a shape; expected HxWxC
SELECT jpeg_encode(zeroblob(12), '2x2');
-- error: jpeg_decode(): jpeg must be a blob
SELECT jpeg_decode('text');
-- error: jpeg_decode(): not a JPEG (it does not start with FF D8 FF)
SELECT jpeg_decode(png_encode(zeroblob(12), '2x2x3'));
-- error: jpeg_shape(): not a JPEG (no bytes)
SELECT jpeg_shape(x'');
-- error: jpeg_decode(): truncated JPEG (the data ends before the image does)
SELECT jpeg_decode(substr(jpeg_encode(pixels, '32x32x3'), 1, 400)) FROM synthetic(1, '32x32x3', 1);
-- error: jpeg_decode(): truncated JPEG (the data ends before the image does)
SELECT jpeg_decode(x'FFD8FFE000104A46494600');
-- error: jpeg_decode(): not a readable JPEG (
SELECT jpeg_decode(x'FFD8FFD9');
