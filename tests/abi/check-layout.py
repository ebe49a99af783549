#!/usr/bin/env python3
"""Layout check of the public structs against the baseline of the .so.0 ABI.

Usage: check-layout.py CC BASELINE LIBRARY INCLUDE_DIR...   (check)
       check-layout.py --write CC BASELINE LIBRARY INCLUDE_DIR...   (write the baseline)

Every struct declared in include/cnnlite/*.h is measured with the compiler (offset and size of
every field, size of the struct). Against the baseline (tests/abi/layout-so0.txt):
  - every field keeps its offset and size (fields are never removed, moved or retyped);
  - a struct never shrinks;
  - a struct that grew (new fields at the end) must keep its old callers working: every
    exported function that takes or returns it (listed in the baseline) must still export
    its CNNLITE_0 version as a compatibility entry point for the old layout (see docs/abi.md).
Structs added after the baseline are free to be anything. Exit status 0 when all hold."""
import os
import re
import subprocess
import sys
import tempfile

def strip_comments(text):
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    return re.sub(r'//[^\n]*', ' ', text)

def parse(include_dirs):
    structs = {}   # name -> [fields]
    protos = []    # (function, text of its prototype)
    for d in include_dirs:
        folder = os.path.join(d, 'cnnlite')
        for fn in sorted(os.listdir(folder)):
            if not fn.endswith('.h'):
                continue
            text = strip_comments(open(os.path.join(folder, fn)).read())
            for m in re.finditer(r'typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*(\w+)\s*;', text, flags=re.S):
                fields = []
                for decl in m.group(2).split(';'):
                    decl = decl.strip()
                    if not decl:
                        continue
                    decl = re.sub(r'\[.*?\]', '', decl)
                    fields.append(re.findall(r'\w+', decl)[-1])
                structs[m.group(3)] = fields
            for m in re.finditer(r'CNNL_API\s+([^;{]*?)\b(cnnl_\w+)\s*\(([^;]*?)\)\s*;', text, flags=re.S):
                protos.append((m.group(2), m.group(1) + ' ' + m.group(3)))
    return structs, protos

def measure(cc, include_dirs, structs):
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include <cnnlite/cnnlite.h>', 'int main(void) {']
    for s, fields in sorted(structs.items()):
        lines.append(f'printf("{s} size %zu\\n", sizeof({s}));')
        for f in fields:
            lines.append(f'printf("{s}.{f} %zu %zu\\n", offsetof({s}, {f}), sizeof((({s} *)0)->{f}));')
    lines.append('return 0; }')
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'layout.c')
        exe = os.path.join(tmp, 'layout')
        open(src, 'w').write('\n'.join(lines) + '\n')
        cmd = [cc, '-std=c11', '-o', exe, src] + ['-I' + d for d in include_dirs]
        subprocess.run(cmd, check=True)
        out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    return out.splitlines()

def exported(library):
    out = subprocess.run(['nm', '-D', '--defined-only', library], check=True, capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if len(line.split()) == 3}

def main(argv):
    write = argv[:1] == ['--write']
    if write:
        argv = argv[1:]
    cc, baseline, library, *include_dirs = argv
    structs, protos = parse(include_dirs)
    if len(structs) < 5:
        print(f'only {len(structs)} structs found in {include_dirs}: the header scan is broken')
        return 1
    layout = measure(cc, include_dirs, structs)
    if write:
        with open(baseline, 'w') as f:
            f.write('# Layout of the public structs in libcnnlite.so.0 (written by check-layout.py --write).\n')
            f.write('# "S size N", "S.field offset size", "S uses f g ..." (functions taking or returning S).\n')
            for line in layout:
                f.write(line + '\n')
            for s in sorted(structs):
                users = sorted({fn for fn, text in protos if re.search(r'\b' + s + r'\b', text)})
                f.write(f'{s} uses {" ".join(users)}\n')
        print(f'wrote {baseline}: {len(structs)} structs')
        return 0

    current = {}
    for line in layout:
        key, rest = line.split(' ', 1)
        current[key] = rest
    sizes = {k: int(v.split()[1]) for k, v in (l.split(' ', 1) for l in layout) if v.startswith('size ')}
    base_sizes, uses, errors, checked = {}, {}, [], 0
    for line in open(baseline):
        if line.startswith('#') or not line.strip():
            continue
        key, rest = line.rstrip('\n').split(' ', 1)
        if rest.startswith('uses'):
            uses[key] = rest.split()[1:]
        elif rest.startswith('size '):
            base_sizes[key] = int(rest.split()[1])
        else:
            checked += 1
            if key not in current:
                errors.append(f'{key}: removed or renamed (was at offset/size {rest})')
            elif current[key] != rest:
                errors.append(f'{key}: offset/size {current[key]}, was {rest}')
    symbols = exported(library)
    for s, size in sorted(base_sizes.items()):
        if s not in sizes:
            errors.append(f'{s}: removed')
        elif sizes[s] < size:
            errors.append(f'{s}: shrank from {size} to {sizes[s]} bytes')
        elif sizes[s] > size:
            missing = [fn for fn in uses.get(s, []) if fn + '@CNNLITE_0' not in symbols]
            if missing:
                errors.append(f'{s} grew from {size} to {sizes[s]} bytes: programs built against the old layout '
                              f'still call {", ".join(missing)}; export each as a CNNLITE_0 compatibility version '
                              f'for the old layout and the new one in a new version node (docs/abi.md)')
            else:
                print(f'{s} grew from {size} to {sizes[s]} bytes; CNNLITE_0 compatibility versions present')
    for e in errors:
        print('ABI: ' + e)
    if not errors:
        print(f'{len(base_sizes)} structs, {checked} fields as in the .so.0 baseline')
    return 1 if errors else 0

if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
