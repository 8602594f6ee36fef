# sharded png_dir: COMMIT of a replace while own scans are open fails; afterwards the table stays stuck
from common import *
import os, json
P = f'{WORK}/rp'; os.system(f'rm -rf {P}')
con = connect()
con.execute(f"CREATE VIRTUAL TABLE temp.t USING png_dir(path='{P}', shape='8x8x3', shards=4, threads=2, timeout=200)")
con.execute("INSERT INTO t SELECT * FROM synthetic(600, '8x8x3', 1)")
c = con.cursor(); c.execute("SELECT id, label, pixels FROM t"); c.fetchmany(100)
con.execute("BEGIN"); con.execute("UPDATE t SET label = 7 WHERE id = 450")
try: con.execute("COMMIT"); print("commit ok")
except sqlite3.Error as e: print("COMMIT:", str(e)[:120])
m = json.load(open(P + '/manifest.json')); print("manifest keys:", [k for k in m if k not in ('shards',)], "undo.journal exists:", os.path.exists(P+'/undo.journal'))
for q in ["SELECT count(*) FROM t", "SELECT label FROM t WHERE id = 450"]:
    try: print(q, con.execute(q).fetchone())
    except sqlite3.Error as e: print(q, "ERROR:", str(e)[:300])
c.close()
print("after closing scan:", con.execute("SELECT count(*), (SELECT label FROM t WHERE id=450) FROM t").fetchone())
