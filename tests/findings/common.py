# Shared by the reproducers in this folder: the extension (EXT, default the build's) and a scratch folder (WORK).
import os, sys, sqlite3, tempfile
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'python'))
MAIN = os.path.join(ROOT, 'build', 'imgstore.so')
WORK = os.environ.get('WORK') or tempfile.mkdtemp(prefix='imgstore-findings-')
def connect(ext=None):
    os.environ['IMGSTORE_EXTENSION'] = ext or os.environ.get('EXT', MAIN)
    import imgstore
    con = sqlite3.connect(':memory:', isolation_level=None)
    return imgstore.load(con)
