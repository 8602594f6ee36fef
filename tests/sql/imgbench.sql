-- imgbench, the CLI: usage errors, timing output, CSV/JSON, sweeps with plots, the quick main report, and
-- verification that fails on a tampered store. {extension} is build/imgstore.so; imgbench sits beside it.

-- shell: "$(dirname {extension})/imgbench" --help | head -1
-- shell-expect: usage: imgbench [options] SCRIPT...
-- shell: "$(dirname {extension})/imgbench" --frobnicate 2>&1; echo "exit $?"
-- shell-expect: imgbench: unknown option '--frobnicate'\n(see imgbench --help)\nexit 2
-- shell: "$(dirname {extension})/imgbench" -r zero {tests}/../sql/disk_usage.sql 2>&1; echo "exit $?"
-- shell-expect: imgbench: -r takes a positive integer, got 'zero'\n(see imgbench --help)\nexit 2
-- shell: "$(dirname {extension})/imgbench" missing.sql 2>&1; echo "exit $?"
-- shell-expect: imgbench: script 'missing.sql' does not exist\n(see imgbench --help)\nexit 2

-- Every statement of a script runs, in order, each timed, however the statements are laid out on lines.
-- shell: printf '%s\n' "CREATE TEMP TABLE t(x); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); -- two rows" "-- measure: total" "SELECT sum(x) FROM t; SELECT imgstore_assert((SELECT count(*) FROM t) = 2, 'both inserts ran'); /* done */" > multi.sql
-- shell: "$(dirname {extension})/imgbench" --all --csv multi.csv multi.sql > /dev/null; echo "exit $?"; /usr/bin/python3 -c "import csv; print(*[r['statement'].strip() + ' -> ' + r['result'] for r in csv.DictReader(open('multi.csv'))], sep='\n')"
-- shell-expect: exit 0\nCREATE TEMP TABLE t(x); -> \nINSERT INTO t VALUES (1); -> \nINSERT INTO t VALUES (2); -> \ntotal -> 3\nSELECT imgstore_assert((SELECT count(*) FROM t) -> 1
-- An error names the line of the statement that failed, even the second one on a line.
-- shell: printf '%s\n' "-- a comment" "" "SELECT 1; SELECT nosuch(1);" > bad.sql; "$(dirname {extension})/imgbench" bad.sql 2>&1; echo "exit $?"
-- shell-expect: imgbench: bad.sql:3: no such function: nosuch\nexit 1

-- Every prepare is checked: a script that drops the parameter table gets a clear error naming the SQL, not
-- silently unbound parameters.
-- shell: printf '%s\n' 'DROP TABLE temp.sqlite_parameters;' 'SELECT @n;' > drop.sql; "$(dirname {extension})/imgbench" -p n=1 drop.sql 2>&1 > /dev/null; echo "exit $?"
-- shell-expect: imgbench: drop.sql:2: cannot prepare 'SELECT value FROM temp.sqlite_parameters WHERE key = ?1': no such table: temp.sqlite_parameters\nexit 1
-- shell: printf '%s\n' 'DROP TABLE temp.sqlite_parameters;' '.parameter set @y 2' > drop2.sql; "$(dirname {extension})/imgbench" drop2.sql 2>&1 > /dev/null; echo "exit $?"
-- shell-expect: imgbench: drop2.sql:2: cannot prepare 'REPLACE INTO temp.sqlite_parameters(key, value) VALUES (?1, ?2)': no such table: temp.sqlite_parameters\nexit 1

-- A store path holding a quote, written as in the shell ('it''s.lmdb'), is that path.
-- shell: "$(dirname {extension})/imgbench" -p backend=lmdb -p "path='it''s.lmdb'" -p source=fashion-mnist -p n=20 {tests}/../sql/store_many.sql {tests}/../sql/read_many.sql {tests}/../sql/disk_usage.sql > /dev/null; echo "exit $?"; ls it*
-- shell-expect: exit 0\nit's.lmdb\nit's.lmdb-lock

-- gnuplot runs without a shell: a plot directory named with $(...), `...` and a quote gets its PNGs and runs
-- no command.
-- shell: d='plots $(touch pwned) `touch pwned2` '"it's"; "$(dirname {extension})/imgbench" -p backend=lmdb -p "path='q-{n}.lmdb'" -p source=fashion-mnist --sweep n=10,20 --plot "$d" {tests}/../sql/store_many.sql > /dev/null 2>&1; echo "exit $?"; file -b "$d/sweep_linear.png" "$d/sweep_log.png" | cut -d, -f1 | sort -u; test -e pwned || test -e pwned2 || echo 'no command ran'
-- shell-expect: exit 0\nPNG image data\nno command ran

-- A sweep over n with repeats, CSV and JSON, and plots; {n} and {repeat} in a parameter give each run its own store.
-- shell: "$(dirname {extension})/imgbench" -p backend=lmdb -p "path='sweep-{n}-{repeat}.lmdb'" -p source=fashion-mnist --sweep n=10,100 -r 2 --csv sweep.csv --json sweep.json --plot plots {tests}/../sql/store_many.sql {tests}/../sql/read_many.sql > table.txt 2> err.txt
-- shell: head -1 sweep.csv
-- shell-expect: script,statement,@n,repeats,rows,min_s,median_s,max_s,result
-- The CSV has one row per measured statement and value of n: store_many, read_many (cold), read_many.
-- shell: tail -n +2 sweep.csv | wc -l
-- shell-expect: 6
-- shell: grep -c ',2,' sweep.csv
-- shell-expect: 6
-- shell: /usr/bin/python3 -c "import json; rows = json.load(open('sweep.json')); print(len(rows), sorted(set(r['@n'] for r in rows)), all(r['min_s'] <= r['median_s'] <= r['max_s'] for r in rows))"
-- shell-expect: 6 [10, 100] True
-- shell: grep 'read_many ' sweep.csv | grep -c '100:'
-- shell-expect: 1
-- shell: file -b plots/sweep_linear.png plots/sweep_log.png | cut -d, -f1 | sort -u
-- shell-expect: PNG image data

-- A tampered store fails verification: the script stops with exit status 1 and says why.
-- shell: "$(dirname {extension})/imgbench" -p backend=png_dir -p "path='tamper'" -p source=fashion-mnist -p n=50 {tests}/../sql/store_many.sql > /dev/null && cp tamper/7.png tamper/8.png
-- shell: "$(dirname {extension})/imgbench" -p backend=png_dir -p "path='tamper'" -p source=fashion-mnist -p n=50 {tests}/../sql/read_many.sql 2>&1 | tail -1; echo "exit ${PIPESTATUS[0]}"
-- shell-expect: imgbench: {tests}/../sql/read_many.sql:13: check failed: read_many: the store differs from its source\nexit 1
-- shell: "$(dirname {extension})/imgbench" -p backend=hdf5 -p "path='tamper.h5'" -p source=fashion-mnist -p n=50 {tests}/../sql/store_many.sql > /dev/null && /usr/bin/python3 -c "import h5py; f = h5py.File('tamper.h5', 'r+'); f['images'][3, 0, 0, 0] ^= 1"
-- shell: "$(dirname {extension})/imgbench" -p backend=hdf5 -p "path='tamper.h5'" -p source=fashion-mnist -p n=50 {tests}/../sql/read_many.sql > /dev/null 2> err.txt; echo "exit $?"; grep -c 'check failed: read_many' err.txt
-- shell-expect: exit 1\n1

-- The main job at --quick size on real data (Fashion-MNIST): every output, a CSV row per dataset, backend,
-- measure and count, valid PNG plots.
-- shell: "$(dirname {extension})/imgbench" report --quick --out rep --no-progress > /dev/null
-- shell: ls rep | grep -c -E '^(report.md|results.csv|results.json)$'
-- shell-expect: 3
-- shell: /usr/bin/python3 -c "import csv; rows = list(csv.DictReader(open('rep/results.csv'))); keys = {(r['dataset'], r['backend'], r['measure'], r['images']) for r in rows}; want = {(d, b, m, n) for d in ('fashion-mnist', 'synthetic-32x32x3') for b in ('lmdb', 'hdf5', 'png_dir') for m in ('store_many', 'read_one', 'read_many_cold', 'read_many_warm', 'disk_usage') for n in ('10', '100', '1000')} | {(d, b, 'store_one', '1') for d in ('fashion-mnist', 'synthetic-32x32x3') for b in ('lmdb', 'hdf5', 'png_dir')}; print(len(rows), keys == want, all(float(r['ratio']) > 0 for r in rows if r['ratio']))"
-- shell-expect: 96 True True
-- shell: ls rep/*.png | wc -l; file -b rep/*.png | cut -d, -f1 | sort -u
-- shell-expect: 18\nPNG image data
-- shell: grep -c '^!\[' rep/report.md; grep -c 'NOT CIFAR-10' rep/report.md
-- shell-expect: 18\n2
-- shell: test ! -e rep/stores && echo 'scratch stores removed'
-- shell-expect: scratch stores removed

-- --cifar takes a cifar-10-batches-bin directory (here a small one in the real format, repeated to reach n).
-- shell: /usr/bin/python3 {tests}/make_fixtures.py && "$(dirname {extension})/imgbench" report --cifar cifar-10-batches-bin --counts 10,40 --backends lmdb --out rep2 --no-progress > /dev/null
-- shell: grep -c 'CIFAR-10 (cifar-10-batches-bin' rep2/report.md; grep -c '^cifar10,lmdb,store_many,40,' rep2/results.csv
-- shell-expect: 2\n1
-- A --cifar directory and an --out directory whose names hold a quote.
-- shell: mkdir -p "cifar it's" && cp cifar-10-batches-bin/* "cifar it's"/ && "$(dirname {extension})/imgbench" report --cifar "cifar it's" --counts 10 --backends lmdb --out "rep it's" --no-progress > /dev/null; echo "exit $?"; grep -c '^cifar10,lmdb,store_many,10,' "rep it's/results.csv"
-- shell-expect: exit 0\n1
