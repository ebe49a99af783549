#!/usr/bin/python3
"""Loading-time and resize-agreement check against Pillow, the way torchvision loads images.

  /usr/bin/python3 bench/load_pil.py [FOLDER] [--size 512] [--cnnlite BUILD/examples/cnnlite-data]
                                      [--threads 2] [--compare]

Times Pillow decoding every image of FOLDER/<class>/<file>, converting it to RGB and resizing
it to SIZE x SIZE with BILINEAR (what torchvision's ImageFolder + Resize do), then, if the
cnnlite-data program is given, times libcnnlite loading the same folder in the same run.
With --compare, libcnnlite's resized images are written to a temporary folder and compared
pixel by pixel with Pillow's: once from the original files (decoders and resizers both
differ), once from Pillow's decoded pixels saved losslessly (the resizers alone).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

from PIL import Image


def image_files(root):
    classes = sorted(d for d in os.listdir(root)
                     if not d.startswith('.') and os.path.isdir(os.path.join(root, d)))
    for c in classes:
        for f in sorted(os.listdir(os.path.join(root, c))):
            if not f.startswith('.'):
                yield c, f


def pil_load(path, size):
    with Image.open(path) as im:
        return im.convert('RGB').resize((size, size), Image.BILINEAR)


def run_cnnlite(exe, root, size, threads, write_dir=None):
    cmd = [exe, 'load', root, '--size', str(size), '--threads', str(threads)]
    if write_dir:
        cmd += ['--write', write_dir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return out.strip()


def compare(root, ours, size):
    import numpy as np
    hist = {}
    worst = 0
    n = 0
    for c, f in image_files(root):
        ref = np.asarray(pil_load(os.path.join(root, c, f), size), dtype=np.int16)
        stem = os.path.splitext(f)[0]
        mine = np.asarray(Image.open(os.path.join(ours, c, stem + '.png')).convert('RGB'), dtype=np.int16)
        d = np.abs(ref - mine)
        worst = max(worst, int(d.max()))
        for v, k in zip(*np.unique(d, return_counts=True)):
            hist[int(v)] = hist.get(int(v), 0) + int(k)
        n += 1
    total = sum(hist.values())
    print(f'resize agreement over {n} images, {total} values: max |diff| {worst}; ' +
          ', '.join(f'{v}: {k / total:.6%}' for v, k in sorted(hist.items())))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('folder', nargs='?',
                   default=os.path.join(here, '..', '..', 'shared', 'data', 'brain-tumor-mri'))
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--cnnlite', help='path of the cnnlite-data program')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--compare', action='store_true')
    a = p.parse_args()
    files = list(image_files(a.folder))
    t0 = time.perf_counter()
    for c, f in files:
        pil_load(os.path.join(a.folder, c, f), a.size)
    t_pil = time.perf_counter() - t0
    print(f'Pillow {Image.__version__}: {len(files)} images decoded, RGB, resized to {a.size}x{a.size} '
          f'in {t_pil:.2f} s (one thread)')
    if a.cnnlite:
        t0 = time.perf_counter()
        out = run_cnnlite(a.cnnlite, a.folder, a.size, a.threads)
        t_ours = time.perf_counter() - t0
        print(f'libcnnlite: {out.replace(chr(10), "; ")}; process wall time {t_ours:.2f} s')
        if a.compare:
            with tempfile.TemporaryDirectory() as tmp:
                run_cnnlite(a.cnnlite, a.folder, a.size, a.threads, tmp)
                print('decoding + resizing (libcnnlite: libjpeg-turbo or stb_image + its resize, vs Pillow):')
                compare(a.folder, tmp, a.size)
            # Resizing alone: give both the same decoded pixels (Pillow's, as lossless PNG).
            with tempfile.TemporaryDirectory() as src, tempfile.TemporaryDirectory() as tmp:
                for c, f in files:
                    os.makedirs(os.path.join(src, c), exist_ok=True)
                    with Image.open(os.path.join(a.folder, c, f)) as im:
                        im.save(os.path.join(src, c, os.path.splitext(f)[0] + '.png'))
                run_cnnlite(a.cnnlite, src, a.size, a.threads, tmp)
                print('resizing alone (same decoded pixels):')
                compare(src, tmp, a.size)
    return 0


if __name__ == '__main__':
    sys.exit(main())
