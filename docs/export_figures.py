"""Write the figures of an executed notebook's tagged cells as PNG files (``make lecture``: the README's).

A cell tagged ``figure:NAME`` gives ``OUT_DIR/NAME.png``, its first PNG output.

    python docs/export_figures.py docs/lecture.ipynb docs/figures
"""
import base64
import sys
from pathlib import Path

import nbformat


def export_figures(notebook, out_dir):
    """Write each ``figure:NAME`` cell's first PNG output to out_dir/NAME.png; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        for tag in cell.get("metadata", {}).get("tags", []):
            if not tag.startswith("figure:"):
                continue
            pngs = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
            if not pngs:
                raise SystemExit(f"{notebook}: the cell tagged {tag!r} has no figure; execute the notebook first")
            path = out_dir / f"{tag.removeprefix('figure:')}.png"
            path.write_bytes(base64.b64decode(pngs[0]))
            written.append(path)
    return written


if __name__ == "__main__":
    for path in export_figures(*sys.argv[1:3]):
        print(path)
