#!/usr/bin/env python3
"""Turns a Markdown document of docs/ (or one '## ' section of it) into an scdoc man page, so the
(5) pages come from the same text as the docs. Usage:
md2scd.py PAGE SECTION "one-line description" DOC.md ["Section heading"] > PAGE.SECTION.scd"""
import re
import sys


def esc(s):
    return s.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")


def inline(s):
    s = s.replace("\\*", "\x00")  # Markdown's escaped star is a literal star
    out = []
    for i, part in enumerate(re.split(r"(`[^`]*`)", s)):
        if i % 2:
            out.append("*" + esc(part[1:-1].replace("\x00", "*")) + "*")
            continue
        part = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", part)
        bold = re.split(r"\*\*(.*?)\*\*", part)
        out.append("".join("*" + esc(b) + "*" if j % 2 else esc(b) for j, b in enumerate(bold)))
    return "".join(out).replace("\x00", "\\*")


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def main():
    page, section, desc, path = sys.argv[1:5]
    only = sys.argv[5] if len(sys.argv) > 5 else None
    lines = open(path, encoding="utf-8").read().splitlines()
    if only:
        start = lines.index("## " + only) + 1
        end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines = lines[start:end]
    out = [f"{page}({section})", "", "# NAME", "", f"{page} - {esc(desc)}", "", "# DESCRIPTION", ""]
    para = []  # prose lines, joined so that inline code may span a line break

    def flush():
        if para:
            out.append(inline(" ".join(para)))
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        prose = line.strip() and not re.match(r"^(```|#|\|)", line)
        if not prose:
            flush()
        if line.startswith("```"):
            out.append("```")
            i += 1
            while not lines[i].startswith("```"):
                out.append(lines[i])
                i += 1
            out.append("```")
        elif line.startswith("# "):
            pass
        elif line.startswith("## "):
            out.append("# " + inline(line[3:]).upper())
        elif line.startswith("### "):
            out.append("## " + inline(line[4:]))
        elif line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-| :]+\|$", lines[i + 1]):
            head = cells(line)
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                row = cells(lines[i])
                out.append("*" + esc(row[0].strip("`")) + "*")
                facts = [f"{h}: {inline(v)}" for h, v in zip(head[1:-1], row[1:-1]) if v]
                text = "; ".join(facts)
                last = inline(row[-1]) if len(row) > 1 else ""
                out.append("\t" + (text + ". " if text else "") + last)
                out.append("")
                i += 1
            continue
        elif prose:
            para.append(line.strip())
        else:
            out.append("")
        i += 1
    flush()
    print("\n".join(out).rstrip("\n"))


main()
