#!/usr/bin/env python3
"""Turns Debian's dictionaries and Bibles into the project's data sets.

Called by scripts/prepare-data.sh, which downloads and unpacks the packages (and exports the two
Bibles with SWORD's mod2imp); standard library only.

  de-en: Ding German-English dictionary (trans-de-en, GPL-2+), file usr/share/trans/de-en.
    {train,dev,test}.{de,en}  sentence pairs: both sides end in . ! or ? and have 3-15 words
                              (not ending in a placeholder like etw./sth.; German capitalised)
    phrases.{de,en}           every other aligned pair (training may add them)
  g2p: CMU pronouncing dictionary (festlex-cmu), file usr/share/festival/dicts/cmu/cmudict-0.4.out.
    {train,dev,test}.{src,tgt}  "k e m b l e" -> "k eh m b ax l" (stress dropped)
  es-en: Spanish Reina-Valera 1909 (sword-text-sparv) -> World English Bible (sword-text-web), both
    public domain, aligned by verse reference (book chapter:verse) as mod2imp exports them.
    {train,dev,test}.{es,en}  verses of 3-40 words on each side, length ratio within 1:2, markup,
                              notes and Psalm superscriptions dropped; dev and test are whole
                              verses held out by reference.

The split is fixed: items are ordered by SHA-256 of their source text (never Python's salted
hash()), the first ones go to test, the next to dev, the rest to train, so reruns and other
machines give byte-identical files. A dev or test source never appears as a source in train or
phrases. Files are written in that hashed order, so any prefix of train is a random sample.
"""

import argparse
import hashlib
import html
import os
import re
import sys

DE_EN_FILES = [f"{split}.{lang}" for split in ("train", "dev", "test", "phrases")
               for lang in ("de", "en")]
G2P_FILES = [f"{split}.{side}" for split in ("train", "dev", "test") for side in ("src", "tgt")]
ES_EN_FILES = [f"{split}.{lang}" for split in ("train", "dev", "test") for lang in ("es", "en")]
# Written last: its presence says the task finished.
DONE_FILE = "SOURCE.txt"

DE_EN_DEV = DE_EN_TEST = 1000
G2P_HELD_OUT = 2000  # dev and test words each
SENTENCE_MIN_WORDS, SENTENCE_MAX_WORDS = 3, 15
ES_EN_HELD_OUT = 1000  # dev and test verses each
VERSE_MIN_WORDS, VERSE_MAX_WORDS = 3, 40

# Innermost annotation of each kind; applied until nothing changes, so nested ones go too.
_ANNOTATIONS = [re.compile(r"\{[^{}]*\}"), re.compile(r"\[[^\[\]]*\]"), re.compile(r"\([^()]*\)")]
_BRACKETS = re.compile(r"[{}\[\]()]")
_LOOSE_PUNCT = re.compile(r"\s+([.!?,:;])(?=\s|$)")
# The dictionary's stand-ins for an object, and "and so on".
_PLACEHOLDERS = {"etw.", "jd.", "jdm.", "jdn.", "jds.", "sb.", "sth.", "usw.", "etc.", "o.ä.",
                 "u.ä.", "bzw."}
# Windows-1252 characters that reached the file as C1 control codes.
_CP1252_FIXES = {"\x92": "\u2019", "\x96": "\u2013"}
_CMU_ENTRY = re.compile(r'^\("([^"]*)" +(\S+) +\((.*)\)\)$')
_CMU_SYLLABLE = re.compile(r"\(\(([a-z]+(?: [a-z]+)*)\) [0-9]\)")
_CMU_BODY = re.compile(r"(?:\(\([a-z]+(?: [a-z]+)*\) [0-9]\) ?)+")
_G2P_SPELLING = re.compile(r"^[a-z']+$")
_IMP_VERSE_KEY = re.compile(r"^\S.* ([1-9][0-9]*):([1-9][0-9]*)$")  # "Genesis 1:1"; 0 = heading
# OSIS elements whose text is not the verse's: notes and headings (innermost first, repeated).
_OSIS_DROPPED = re.compile(r"<(note|title)\b[^>]*(?<!/)>((?!<\1\b).)*?</\1>", re.S)
_OSIS_TAG = re.compile(r"<[^>]*>")
_SPACE_AFTER_OPENING = re.compile(r"([¿¡“‘(\[])\s+")
# Curly quotes as ASCII, so that BLEU's 13a tokenizer splits them off words as it does '"'.
_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


def log(message):
    print(message, file=sys.stderr, flush=True)


def split_key(text):
    return hashlib.sha256(("fastdiss-split-v1\0" + text).encode("utf-8")).digest()


def read_text(path):
    """Returns the file as str: UTF-8 if it decodes, else latin-1 (said in the log)."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        encoding = "latin-1"
    log(f"{path}: {len(raw)} bytes, read as {encoding}")
    return text


def task_done(out_dir, files):
    return all(os.path.isfile(os.path.join(out_dir, name)) for name in files + [DONE_FILE])


def write_lines(path, lines):
    """Writes atomically, one item per line; refuses items that would break the line format."""
    for line in lines:
        if "\n" in line or "\r" in line or not line.strip():
            raise ValueError(f"{path}: bad line {line!r}")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)


def write_parallel(out_dir, split, ext_a, ext_b, pairs):
    write_lines(os.path.join(out_dir, f"{split}.{ext_a}"), [a for a, _ in pairs])
    write_lines(os.path.join(out_dir, f"{split}.{ext_b}"), [b for _, b in pairs])


def write_ordered_splits(out_dir, ordered, held_out, ext_a, ext_b):
    """The first held_out pairs go to test, the next held_out to dev, the rest to train; returns
    [(split, count)]."""
    splits = {
        "test": ordered[:held_out],
        "dev": ordered[held_out:2 * held_out],
        "train": ordered[2 * held_out:],
    }
    os.makedirs(out_dir, exist_ok=True)
    for split, split_pairs in splits.items():
        write_parallel(out_dir, split, ext_a, ext_b, split_pairs)
    return [(name, len(split_pairs)) for name, split_pairs in splits.items()]


def write_done(out_dir, source, counts):
    lines = [f"source: {source}"] + [f"{name}: {count}" for name, count in counts]
    write_lines(os.path.join(out_dir, DONE_FILE), lines)


def clean_side(text):
    """One side of a sub-entry: drop annotations, keep the first synonym, collapse spaces, and
    join punctuation left standing alone ("Hat Zapfen [ugs.] ." -> "Hat Zapfen.")."""
    previous = None
    while previous != text:
        previous = text
        for pattern in _ANNOTATIONS:
            text = pattern.sub(" ", text)
    text = " ".join(text.split(";")[0].split())
    return _LOOSE_PUNCT.sub(r"\1", text)


def is_sentence(de, en):
    """Both sides end in . ! or ? and have 3-15 words. Dictionary phrases that merely end in a
    placeholder ("eine Litanei von etw." / "a litany of sth.") or start in lower case in German
    ("vernarrt sein in jdn.") are not sentences."""
    for text in (de, en):
        words = text.split()
        if (text[-1] not in ".!?" or not SENTENCE_MIN_WORDS <= len(words) <= SENTENCE_MAX_WORDS
                or words[-1] in _PLACEHOLDERS):
            return False
    return not de[0].islower()


def parse_ding(text):
    """Returns the unique aligned (German, English) pairs in file order, and counters."""
    for bad, good in _CP1252_FIXES.items():
        text = text.replace(bad, good)
    pairs = {}  # dict keeps first-seen order
    stats = {"entries": 0, "unaligned_entries": 0, "empty_pairs": 0, "bracket_leftovers": 0,
             "duplicate_pairs": 0, "malformed_lines": 0}
    for line in text.split("\n"):
        if not line.strip() or line.startswith("#"):
            continue
        sides = line.split(" :: ")
        if len(sides) != 2:
            stats["malformed_lines"] += 1
            continue
        stats["entries"] += 1
        german, english = (side.split(" | ") for side in sides)
        if len(german) != len(english):
            stats["unaligned_entries"] += 1
            continue
        for de, en in zip(german, english):
            de, en = clean_side(de), clean_side(en)
            if not de or not en:
                stats["empty_pairs"] += 1
            elif _BRACKETS.search(de) or _BRACKETS.search(en):
                stats["bracket_leftovers"] += 1  # an unbalanced annotation
            elif (de, en) in pairs:
                stats["duplicate_pairs"] += 1
            else:
                pairs[(de, en)] = None
    return list(pairs), stats


def prepare_de_en(trans_path, out_dir, source):
    pairs, stats = parse_ding(read_text(trans_path))
    sentences = [p for p in pairs if is_sentence(*p)]
    sentence_set = set(sentences)
    phrases = [p for p in pairs if p not in sentence_set]

    # Held-out sources, one pair each (the first in the file); other translations of a held-out
    # source are dropped rather than leaked into train.
    first_pair = {}
    for de, en in sentences:
        first_pair.setdefault(de, (de, en))
    sources = sorted(first_pair, key=split_key)
    if len(sources) < DE_EN_TEST + DE_EN_DEV + 1:
        raise SystemExit(f"error: only {len(sources)} sentence sources in {trans_path}")
    test_sources = sources[:DE_EN_TEST]
    dev_sources = sources[DE_EN_TEST:DE_EN_TEST + DE_EN_DEV]
    held_out = set(test_sources) | set(dev_sources)

    def shuffled(items):
        return sorted(items, key=lambda p: split_key(p[0] + "\t" + p[1]))

    splits = {
        "test": shuffled(first_pair[s] for s in test_sources),
        "dev": shuffled(first_pair[s] for s in dev_sources),
        "train": shuffled(p for p in sentences if p[0] not in held_out),
        "phrases": shuffled(p for p in phrases if p[0] not in held_out),
    }
    dropped = (len(sentences) - len(splits["train"]) - DE_EN_TEST - DE_EN_DEV,
               len(phrases) - len(splits["phrases"]))
    os.makedirs(out_dir, exist_ok=True)
    for split, split_pairs in splits.items():
        write_parallel(out_dir, split, "de", "en", split_pairs)
    counts = [(name, len(split_pairs)) for name, split_pairs in splits.items()]
    log(f"de-en: {stats['entries']} entries, {len(pairs)} unique aligned pairs "
        f"({len(sentences)} sentence pairs, {len(phrases)} phrase pairs); skipped: "
        + ", ".join(f"{k} {v}" for k, v in stats.items() if k != "entries"))
    log(f"de-en: held-out sources removed from train: {dropped[0]} sentence pairs, "
        f"from phrases: {dropped[1]} pairs")
    write_done(out_dir, source, counts)
    return counts


def parse_cmudict(text):
    """Returns unique (spelling, phonemes) in file order, and counters."""
    entries = {}
    stats = {"entries": 0, "malformed_lines": 0, "bad_characters": 0, "duplicate_spellings": 0}
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        match = _CMU_ENTRY.match(line)
        # The syllables must make up the whole body, or the line is not understood.
        if not match or not _CMU_BODY.fullmatch(match.group(3)):
            stats["malformed_lines"] += 1
            continue
        syllables = _CMU_SYLLABLE.findall(match.group(3))
        stats["entries"] += 1
        spelling = match.group(1)
        if not _G2P_SPELLING.match(spelling):
            stats["bad_characters"] += 1
            continue
        if spelling in entries:
            stats["duplicate_spellings"] += 1  # keep the first pronunciation
            continue
        entries[spelling] = " ".join(syllables)
    return list(entries.items()), stats


def prepare_g2p(cmudict_path, out_dir, source):
    words, stats = parse_cmudict(read_text(cmudict_path))
    if len(words) < 2 * G2P_HELD_OUT + 1:
        raise SystemExit(f"error: only {len(words)} words in {cmudict_path}")
    ordered = sorted(words, key=lambda w: split_key(w[0]))
    as_chars = [(" ".join(spelling), phonemes) for spelling, phonemes in ordered]
    counts = write_ordered_splits(out_dir, as_chars, G2P_HELD_OUT, "src", "tgt")
    log(f"g2p: {stats['entries']} entries, {len(words)} unique words; skipped: "
        f"{stats['bad_characters']} with characters outside a-z and ', "
        f"{stats['duplicate_spellings']} later pronunciations of a spelling, "
        f"{stats['malformed_lines']} lines not understood")
    write_done(out_dir, source, counts)
    return counts


def parse_imp(text):
    """SWORD's import format: "$$$KEY" lines, each followed by its entry's lines. Returns
    {key: entry} for verse keys only (book chapter:verse, both from 1)."""
    entries, key, lines = {}, None, []
    for line in text.split("\n") + ["$$$"]:
        if line.startswith("$$$"):
            if key is not None and _IMP_VERSE_KEY.match(key):
                entries[key] = " ".join(lines).strip()
            key, lines = line[3:], []
        else:
            lines.append(line)
    return entries


def clean_osis(text):
    """A verse's OSIS markup to plain text: notes and headings dropped, tags removed, entities
    decoded, spaces collapsed, no space before closing or after opening punctuation."""
    previous = None
    while previous != text:
        previous, text = text, _OSIS_DROPPED.sub(" ", text)
    text = html.unescape(_OSIS_TAG.sub(" ", text))
    text = " ".join(text.split())
    text = _LOOSE_PUNCT.sub(r"\1", text)
    text = re.sub(r"\s+([,.;:!?”’)\]])", r"\1", text)
    return _SPACE_AFTER_OPENING.sub(r"\1", text).translate(_QUOTES)


def fix_chapter_opening(key, text):
    """The Spanish module prints a chapter's first word in capitals ("EN el principio", "Y ESTOS
    son") and keeps the Psalms' superscriptions as text before it ("Al Músico principal: Salmo de
    David. RESPÓNDEME cuando clamo"), where the English module drops them. In a chapter's first
    verse, the superscription is dropped and the word written as any other."""
    if not key.endswith(":1"):
        return text
    words = text.split(" ")
    reach = 25 if key.startswith("Psalms ") else 2
    for i, word in enumerate(words[:reach]):
        letters = word.strip(".,;:!?¿¡\"'")
        if len(letters) < 2 or not letters.isupper():
            continue
        if i > 0 and key.startswith("Psalms ") and words[i - 1].endswith("."):
            words, i = words[i:], 0  # the superscription
        words[i] = word[0] + word[1:].lower() if i == 0 else word.lower()
        break
    return " ".join(words)


def is_verse_pair(es, en):
    a, b = len(es.split()), len(en.split())
    return (VERSE_MIN_WORDS <= a <= VERSE_MAX_WORDS and VERSE_MIN_WORDS <= b <= VERSE_MAX_WORDS
            and max(a, b) <= 2 * min(a, b))


def prepare_es_en(es_path, en_path, out_dir, source):
    es, en = parse_imp(read_text(es_path)), parse_imp(read_text(en_path))
    stats = {"es_verses": len(es), "en_verses": len(en), "unmatched": 0, "empty": 0,
             "length": 0, "duplicate_source": 0}
    pairs, seen = [], set()
    for key, es_text in es.items():
        if key not in en:
            stats["unmatched"] += 1
            continue
        pair = (fix_chapter_opening(key, clean_osis(es_text)), clean_osis(en[key]))
        if not pair[0] or not pair[1]:
            stats["empty"] += 1
        elif not is_verse_pair(*pair):
            stats["length"] += 1
        elif pair[0] in seen:
            stats["duplicate_source"] += 1  # a source text appears once, so none is in two splits
        else:
            seen.add(pair[0])
            pairs.append((key, pair))
    if len(pairs) < 2 * ES_EN_HELD_OUT + 1:
        raise SystemExit(f"error: only {len(pairs)} verse pairs in {es_path} and {en_path}")
    ordered = [pair for _, pair in sorted(pairs, key=lambda item: split_key(item[0]))]
    counts = write_ordered_splits(out_dir, ordered, ES_EN_HELD_OUT, "es", "en")
    log(f"es-en: {len(pairs)} verse pairs kept; " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    write_done(out_dir, source, counts)
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="data folder (de-en/, g2p/, es-en/ go inside)")
    parser.add_argument("--trans", help="path of usr/share/trans/de-en")
    parser.add_argument("--cmudict", help="path of usr/share/festival/dicts/cmu/cmudict-0.4.out")
    parser.add_argument("--bible-es", help="mod2imp export of the spaRV1909eb module")
    parser.add_argument("--bible-en", help="mod2imp export of the engWEB2015eb module")
    parser.add_argument("--bible-source", default="sword-text-sparv, sword-text-web",
                        help="provenance line")
    parser.add_argument("--trans-source", default="trans-de-en", help="provenance line")
    parser.add_argument("--cmudict-source", default="festlex-cmu", help="provenance line")
    parser.add_argument("--force", action="store_true", help="rebuild outputs that exist")
    parser.add_argument("--check", action="store_true",
                        help="only exit 0 if every task is complete, 1 if not")
    args = parser.parse_args()

    de_en_dir = os.path.join(args.out, "de-en")
    g2p_dir = os.path.join(args.out, "g2p")
    es_en_dir = os.path.join(args.out, "es-en")
    if args.check:
        return 0 if (task_done(de_en_dir, DE_EN_FILES) and task_done(g2p_dir, G2P_FILES)
                     and task_done(es_en_dir, ES_EN_FILES)) else 1

    for name, path in (("--trans", args.trans), ("--cmudict", args.cmudict),
                       ("--bible-es", args.bible_es), ("--bible-en", args.bible_en)):
        if not path or not os.path.isfile(path):
            parser.error(f"{name} must name an existing file, got {path!r}")
    for task, out_dir, files, prepare, paths, source in (
            ("de-en", de_en_dir, DE_EN_FILES, prepare_de_en, [args.trans], args.trans_source),
            ("g2p", g2p_dir, G2P_FILES, prepare_g2p, [args.cmudict], args.cmudict_source),
            ("es-en", es_en_dir, ES_EN_FILES, prepare_es_en, [args.bible_es, args.bible_en],
             args.bible_source)):
        if task_done(out_dir, files) and not args.force:
            log(f"{task}: {out_dir} is complete, skipped (--force rebuilds it)")
            continue
        # The marker goes first, so an interrupted rebuild is never taken for a finished one.
        if os.path.exists(os.path.join(out_dir, DONE_FILE)):
            os.remove(os.path.join(out_dir, DONE_FILE))
        counts = prepare(*paths, out_dir, source)
        print(f"{task}: " + ", ".join(f"{name} {count}" for name, count in counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
