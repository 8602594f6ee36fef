-- png_dir specifics: real PNG files that other tools read and write, atomic commits, damaged files.

-- shell: head -c 100 /dev/zero > plainfile
-- error: table f: path 'plainfile' is not a directory; expected a directory of PNG files
CREATE VIRTUAL TABLE f USING png_dir(path='plainfile', shape='8x8x3');

CREATE VIRTUAL TABLE p USING png_dir(path='p', shape='8x6x3');
INSERT INTO p SELECT id, label, pixels FROM synthetic(20, '8x6x3', 3, 'smooth');
-- Our files open in other tools with the right size and colour type.
-- shell: file p/7.png | sed 's/.*: //'
-- shell-expect: PNG image data, 6 x 8, 8-bit/color RGB, non-interlaced
-- shell: /usr/bin/python3 -c "from PIL import Image; im = Image.open('p/7.png'); print(im.size, im.mode)"
-- shell-expect: (6, 8) RGB
-- shell: /usr/bin/python3 -c "from PIL import Image; open('pil7.hex', 'w').write(Image.open('p/7.png').tobytes().hex().upper())"
-- expect: 1
SELECT CAST(readfile('pil7.hex') AS TEXT) = hex(pixels) FROM p WHERE id = 7;
-- shell: head -3 p/labels.csv | tr '\n' ' '
-- shell-expect: id,label 0,8 1,2
-- expect: 1
SELECT (SELECT group_concat(id || ':' || label) FROM p) = (SELECT group_concat(id || ':' || label) FROM synthetic(20, '8x6x3', 3, 'smooth'));

-- ROLLBACK and a failed statement leave the directory exactly as it was, without stray files.
-- shell: ls -A p | sort | tr '\n' ' ' > before.txt; wc -w < before.txt
-- shell-expect: 22
BEGIN;
INSERT INTO p SELECT id + 100, label, pixels FROM synthetic(5, '8x6x3', 3);
DELETE FROM p WHERE id < 5;
UPDATE p SET label = 99;
ROLLBACK;
-- error: table p: pixels of id 104 are 1 bytes
INSERT INTO p SELECT id + 100, label, CASE WHEN id = 4 THEN x'00' ELSE pixels END FROM synthetic(5, '8x6x3', 3);
-- shell: ls -A p | sort | tr '\n' ' ' | cmp - before.txt && echo same
-- shell-expect: same
-- expect: 20|0
SELECT count(*), sum(label = 99) FROM p;

-- Leftovers of a transaction that never committed are removed on open.
-- shell: mkdir -p p/.pending && cp p/3.png p/.pending/50.1.png && echo 'id,label' > p/labels.csv.pending
-- process
CREATE VIRTUAL TABLE q USING png_dir(path='p');
-- expect: 20
SELECT count(*) FROM q;
-- shell: ls -A p | sort | tr '\n' ' ' | cmp - before.txt && echo same
-- shell-expect: same
-- A commit record left by a crash is finished on open: the renames, the deletes and labels.csv.
-- shell: mkdir -p p/.pending && cp p/3.png p/.pending/60.1.png && cp p/4.png p/.pending/0.2.png && printf '60,1\n' > p/labels.csv.pending && printf 'imgstore-commit 1\ncsv append %s\nrename 60 1\nrename 0 2\n' $(stat -c %s p/labels.csv) > p/COMMIT
-- process
CREATE VIRTUAL TABLE r USING png_dir(path='p');
-- expect: 21|1|1
SELECT count(*), (SELECT pixels FROM r WHERE id = 60) = (SELECT pixels FROM r WHERE id = 3),
       (SELECT pixels FROM r WHERE id = 0) = (SELECT pixels FROM r WHERE id = 4) FROM r;
-- shell: test ! -e p/COMMIT && test ! -e p/.pending && test ! -e p/labels.csv.pending && echo clean
-- shell-expect: clean

-- labels.csv is the index: a PNG it does not list is not a row; a listed id without its file is an error.
-- shell: cp p/5.png p/777.png && rm p/6.png
-- process
CREATE VIRTUAL TABLE s USING png_dir(path='p');
-- expect: 21|0
SELECT count(*), count(*) FILTER (WHERE id = 777) FROM s;
-- error: table s: 'p/6.png' is missing; labels.csv lists id 6
SELECT pixels FROM s WHERE id = 6;
-- expect: 6|1
SELECT id, label IS NOT NULL FROM s WHERE id = 6;
-- imgstore_check reports both, and with full = 1 decodes every image.
-- expect: 'p/6.png' is missing; labels.csv lists id 6|1
SELECT substr(c, 1, instr(c, char(10)) - 1), instr(c, '777.png'' is not listed in labels.csv') > 0
  FROM (SELECT imgstore_check('png_dir', 'p', 1) AS c);
-- A corrupt or truncated PNG is an error naming the file, never a crash.
-- shell: head -c 60 p/8.png > p/8.tmp && mv p/8.tmp p/8.png && head -c 200 /dev/urandom > p/9.png
-- error: table s: 'p/8.png': corrupt PNG
SELECT pixels FROM s WHERE id = 8;
-- error: table s: 'p/9.png': not a readable PNG
SELECT pixels FROM s WHERE id = 9;

-- PNGs made by other tools at the right size are read: RGB, palette (converted to RGB), 16-bit gray
-- (scaled to 8 bits), in a directory with just labels.csv (the shape comes from the first image).
-- shell: /usr/bin/python3 {tests}/make_pil_pngs.py
-- process
CREATE VIRTUAL TABLE pil USING png_dir(path='pil_rgb');
-- The shape comes from the first image: 4 x 5 x 3 = 60 bytes an image.
-- expect: 2|60|1
SELECT count(*), max(length(pixels)), (SELECT hex(pixels) FROM pil WHERE id = 1) = CAST(readfile('pil_rgb/1.hex') AS TEXT) FROM pil;
CREATE VIRTUAL TABLE pal USING png_dir(path='pil_palette', shape='4x5x3');
-- expect: 1
SELECT hex(pixels) = CAST(readfile('pil_palette/0.hex') AS TEXT) FROM pal WHERE id = 0;
CREATE VIRTUAL TABLE g16 USING png_dir(path='pil_gray16', shape='4x5x1');
-- expect: 000102030405060708090A0B0C0D0E0F10111213
SELECT hex(pixels) FROM g16 WHERE id = 0;
-- error: table wrong: shape '4x5x3' disagrees with the store 'pil_wrong_size', which holds 7x7x3 images
CREATE VIRTUAL TABLE wrong USING png_dir(path='pil_wrong_size', shape='4x5x3');
-- error: table wrong2: shape '5x4x3' disagrees with the store 'pil_rgb', which holds 4x5x3 images
CREATE VIRTUAL TABLE wrong2 USING png_dir(path='pil_rgb', shape='5x4x3');
-- Reading a directory made by other tools leaves it as it was: no .imgstore, nothing else written.
-- shell: ls -A pil_rgb | tr '\n' ' '
-- shell-expect: 0.hex 0.png 1.hex 1.png labels.csv
-- error: table csv: 'pil_badcsv/labels.csv' line 4 is '2;4'; expected 'id,label' with integers, id >= 0
CREATE VIRTUAL TABLE csv USING png_dir(path='pil_badcsv', shape='4x5x3');

-- The compression level is an argument: level 0 stores, level 9 compresses.
CREATE VIRTUAL TABLE l0 USING png_dir(path='l0', shape='32x32x3', level=0);
CREATE VIRTUAL TABLE l9 USING png_dir(path='l9', shape='32x32x3', level=9);
INSERT INTO l0 SELECT * FROM synthetic(20, '32x32x3', 1, 'smooth');
INSERT INTO l9 SELECT * FROM synthetic(20, '32x32x3', 1, 'smooth');
-- expect: 1|1
SELECT file_bytes('l0') > 2 * file_bytes('l9'), (SELECT image_digest(id, label, pixels) FROM l0) = (SELECT image_digest(id, label, pixels) FROM l9);
-- error: table l10: argument level='10' is not valid; expected an integer from 0 to 9
CREATE VIRTUAL TABLE l10 USING png_dir(path='l10', shape='32x32x3', level=10);

-- A second writer waits, then gets a clear busy error; the first one's work is intact.
CREATE VIRTUAL TABLE w1 USING png_dir(path='l9');
BEGIN;
INSERT INTO w1 VALUES (500, 1, zeroblob(3072));
-- expect: busy
.shell sqlite3 -batch -cmd '.load {extension}' :memory: "CREATE VIRTUAL TABLE w USING png_dir(path='l9'); INSERT INTO w VALUES (501, 1, zeroblob(3072));" 2>&1 | grep -q "'l9' is being written by another connection" && echo busy
COMMIT;
-- expect: 21
SELECT count(*) FROM w1;

-- A new id is written straight to <id>.png: a file that cannot be made there fails its statement, which
-- leaves nothing behind (the directory in the way is not ours to remove).
-- process
CREATE VIRTUAL TABLE f USING png_dir(path='fail_png', shape='2x2x1', threads=1);
CREATE VIRTUAL TABLE f2 USING png_dir(path='fail_png', threads=2);
INSERT INTO f VALUES (1, 1, x'01010101');
.shell mkdir -p fail_png/7.png/in_the_way
-- error: table f: cannot open 'fail_png/7.png': Is a directory
INSERT INTO f VALUES (7, 7, x'07070707');
-- error: table f2: cannot open 'fail_png/7.png': Is a directory
INSERT INTO f2 VALUES (6, 6, x'06060606'), (7, 7, x'07070707'), (8, 8, x'08080808');
-- shell: ls fail_png | paste -sd' '
-- shell-expect: 1.png 7.png labels.csv
.shell rm -r fail_png/7.png
INSERT INTO f VALUES (7, 7, x'07070707');

-- A commit whose record is durable but whose apply fails (a rename refused: a directory stands where the
-- replaced PNG goes) stands: the statement succeeds, the next statements fail naming the cause until it is
-- fixed, and then the rows are there; nothing is lost or shown from a rolled-back state.
.shell rm fail_png/7.png && mkdir -p fail_png/7.png/in_the_way
INSERT OR REPLACE INTO f VALUES (7, 8, x'08080808');
-- error: table f: 'fail_png' holds a committed transaction not yet applied: table f: applying the commit record of 'fail_png': rename to 'fail_png/7.png': Is a directory; fix the cause
SELECT count(*) FROM f;
.shell rm -r fail_png/7.png
-- expect: 2|08080808
SELECT count(*), (SELECT hex(pixels) FROM f WHERE id = 7) FROM f;
-- process
-- expect: 2|08080808|ok
SELECT count(*), (SELECT hex(pixels) FROM f WHERE id = 7), imgstore_check('png_dir', 'fail_png', 1) FROM f;

-- imgstore_check changes nothing: the files of a transaction that did not commit are reported and left;
-- imgstore_repair removes them.
-- shell: mkdir -p fail_png/.pending && printf x > fail_png/.pending/99.1.png
-- expect: 1
SELECT imgstore_check('png_dir', 'fail_png') LIKE '%fail_png/.pending'' is left by a transaction that did not commit; imgstore_repair() removes it';
-- shell: test -e fail_png/.pending/99.1.png && echo still there
-- shell-expect: still there
-- expect: ok|ok
SELECT imgstore_repair('png_dir', 'fail_png'), imgstore_check('png_dir', 'fail_png', 1);
-- shell: test ! -e fail_png/.pending && echo removed
-- shell-expect: removed

-- A crash in a transaction leaves the new ids it wrote as <id>.png, unlisted, and .pending/new naming them:
-- imgstore_check reports them, imgstore_repair (as any open by a writer) removes them and nothing else.
-- shell: mkdir -p fail_png/.pending && printf '50\n51\n7\n' > fail_png/.pending/new && cp fail_png/1.png fail_png/50.png && cp fail_png/1.png fail_png/52.png
-- expect: 1
SELECT imgstore_check('png_dir', 'fail_png') LIKE '%fail_png/50.png'' is not listed in labels.csv%';
-- expect: 1
SELECT imgstore_repair('png_dir', 'fail_png') = '''fail_png/52.png'' is not listed in labels.csv (not part of the store)';
-- shell: ls fail_png | paste -sd' '
-- shell-expect: 1.png 52.png 7.png labels.csv

-- threads=1 and threads=2 write the same bytes; a bad row in a threaded INSERT fails its statement with the
-- usual message and leaves the transaction's earlier rows, and nothing of that statement.
-- process
CREATE VIRTUAL TABLE u1 USING png_dir(path='u1_png', shape='8x8x3', threads=1);
CREATE VIRTUAL TABLE u2 USING png_dir(path='u2_png', shape='8x8x3', threads=2);
INSERT INTO u1 SELECT * FROM synthetic(300, '8x8x3', 4, 'smooth');
INSERT INTO u2 SELECT * FROM synthetic(300, '8x8x3', 4, 'smooth');
-- expect: 1
SELECT (SELECT image_digest(id, label, pixels) FROM u1) = (SELECT image_digest(id, label, pixels) FROM u2);
-- shell: diff -r u1_png u2_png && echo same files
-- shell-expect: same files
-- expect: 1
SELECT (SELECT image_digest(id, label, pixels) FROM u2 WHERE id IN (3, 50, 299, 1000))
     = (SELECT image_digest(id, label, pixels) FROM synthetic(300, '8x8x3', 4, 'smooth') WHERE id IN (3, 50, 299));
BEGIN;
INSERT INTO u2 SELECT id + 1000, label, pixels FROM synthetic(40, '8x8x3', 5);
-- error: table u2: pixels of id 2020 are 1 bytes; expected 192
INSERT INTO u2 SELECT id + 2000, label, CASE WHEN id = 20 THEN x'00' ELSE pixels END FROM synthetic(40, '8x8x3', 5);
-- error: table u2: pixels of id 3020
INSERT INTO u2 SELECT id + 3000, label, CASE WHEN id = 20 THEN NULL ELSE pixels END FROM synthetic(40, '8x8x3', 5);
-- error: table u2: id 1005 already exists
INSERT INTO u2 SELECT CASE WHEN id = 30 THEN 1005 ELSE id + 4000 END, label, pixels FROM synthetic(40, '8x8x3', 5);
-- expect: 340
SELECT count(*) FROM u2;
COMMIT;
-- expect: 1
SELECT (SELECT image_digest(id, label, pixels) FROM u2)
     = (SELECT image_digest(id, label, pixels) FROM (SELECT * FROM synthetic(300, '8x8x3', 4, 'smooth')
                                                    UNION ALL SELECT id + 1000, label, pixels FROM synthetic(40, '8x8x3', 5)));
-- shell: ls u2_png | wc -l; test ! -e u2_png/.pending && echo no .pending
-- shell-expect: 341\nno .pending
-- expect: ok
SELECT imgstore_check('png_dir', 'u2_png', 1);

-- A version 1 store (made by an earlier build) is read as it is, and marked version 2 by its first transaction
-- that writes (one byte, in place), so that an earlier build, which would replace files under this build's
-- readers, refuses it from then on. A commit that replaces or deletes keeps the old files in .old/<k> only
-- while statements that began before it read: with none, they are gone when the commit returns.
-- process
CREATE VIRTUAL TABLE v1 USING png_dir(path='v1_png', shape='2x2x1');
INSERT INTO v1 VALUES (1, 1, x'01010101'), (2, 2, x'02020202');
-- shell: printf 'imgstore-png_dir 1\nshape=2x2x1\n' > v1_png/.imgstore
-- process
CREATE VIRTUAL TABLE v1b USING png_dir(path='v1_png');
-- expect: 2|02020202
SELECT count(*), (SELECT hex(pixels) FROM v1b WHERE id = 2) FROM v1b;
-- shell: head -1 v1_png/.imgstore
-- shell-expect: imgstore-png_dir 1
INSERT OR REPLACE INTO v1b VALUES (2, 5, x'05050505');
DELETE FROM v1b WHERE id = 1;
-- shell: head -1 v1_png/.imgstore; ls -A v1_png | paste -sd' '; ls -A v1_png/.old; cat v1_png/.old/generation
-- shell-expect: imgstore-png_dir 2\n.imgstore .old 2.png labels.csv\ngeneration\n2
-- expect: 1|5|05050505|ok
SELECT count(*), label, hex(pixels), imgstore_check('png_dir', 'v1_png', 1) FROM v1b;
