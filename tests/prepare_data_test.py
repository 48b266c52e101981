#!/usr/bin/env python3
"""scripts/prepare_data.py's es-en task: SWORD export parsing, OSIS cleaning and the split."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import prepare_data  # noqa: E402


class ParseImpTest(unittest.TestCase):
    def test_keeps_verses_only(self):
        text = ("$$$[ Module Heading ]\n\n$$$Genesis 0:0\n<title>Genesis</title>\n"
                "$$$Genesis 1:0\n<chapter n=\"1\"/>\n$$$Genesis 1:1\nIn the\nbeginning\n"
                "$$$1 John 5:21\nLittle children\n")
        self.assertEqual(prepare_data.parse_imp(text),
                         {"Genesis 1:1": "In the beginning", "1 John 5:21": "Little children"})


class CleanOsisTest(unittest.TestCase):
    def test_drops_notes_headings_and_tags(self):
        text = ('<title type="x-heading">The Creation</title><w lemma="strong:H7225">EN el '
                'principio</w> <w lemma="strong:H1254">crió</w><note type="x-footnote">or '
                '<hi>made</hi> <note>nested</note></note> Dios &amp; <milestone type="x"/>'
                ' los cielos .')
        self.assertEqual(prepare_data.clean_osis(text), "EN el principio crió Dios & los cielos.")

    def test_punctuation_and_quotes(self):
        self.assertEqual(prepare_data.clean_osis("dijo: ¿ Qué te he hecho ?"),
                         "dijo: ¿Qué te he hecho?")
        self.assertEqual(prepare_data.clean_osis("she said, “ What have I done ” Then God’s"),
                         "she said, \"What have I done\" Then God's")

    def test_chapter_openings(self):
        fix = prepare_data.fix_chapter_opening
        self.assertEqual(fix("Genesis 1:1", "EN el principio crió Dios"), "En el principio crió Dios")
        self.assertEqual(fix("Ezra 12:1", "Y ESTOS son los sacerdotes"), "Y estos son los sacerdotes")
        self.assertEqual(fix("Psalms 4:1", "Al Músico principal: Salmo de David. RESPÓNDEME cuando"),
                         "Respóndeme cuando")
        self.assertEqual(fix("Psalms 4:2", "Hijos de los hombres, ¿hasta cuándo"),
                         "Hijos de los hombres, ¿hasta cuándo")
        # Not a chapter's first verse, or capitals further in: inscriptions stay as printed.
        self.assertEqual(fix("Exodus 28:36", "y grabarás en ella: SANTIDAD Á JEHOVÁ."),
                         "y grabarás en ella: SANTIDAD Á JEHOVÁ.")
        self.assertEqual(fix("Exodus 3:1", "Y apacentando Moisés JEHOVÁ"), "Y apacentando Moisés JEHOVÁ")

    def test_verse_pair_lengths(self):
        self.assertTrue(prepare_data.is_verse_pair("uno dos tres", "one two three four"))
        self.assertFalse(prepare_data.is_verse_pair("uno dos", "one two"))  # too short
        self.assertFalse(prepare_data.is_verse_pair("uno dos tres", "a b c d e f g"))  # ratio
        self.assertFalse(prepare_data.is_verse_pair(" ".join(["x"] * 41), " ".join(["y"] * 41)))


class PrepareEsEnTest(unittest.TestCase):
    def test_split_is_disjoint_and_complete(self):
        verses = 2200
        with tempfile.TemporaryDirectory() as tmp:
            es_path, en_path, out = (os.path.join(tmp, n) for n in ("es.imp", "en.imp", "out"))
            with open(es_path, "w", encoding="utf-8") as es, \
                    open(en_path, "w", encoding="utf-8") as en:
                for i in range(verses):
                    key = f"$$$Book {i // 100 + 1}:{i % 100 + 1}\n"
                    es.write(key + f"<w>palabra {i} de la verdad</w>\n")
                    en.write(key + f"word {i} of the truth\n")
                en.write("$$$Book 99:1\nonly in English here\n")  # unmatched keys are dropped
                es.write("$$$Book 98:1\nuno dos\n")  # too short
                en.write("$$$Book 98:1\none two\n")
            counts = dict(prepare_data.prepare_es_en(es_path, en_path, out, "test"))
            self.assertEqual(counts, {"test": 1000, "dev": 1000, "train": verses - 2000})
            splits = {}
            for split in ("train", "dev", "test"):
                with open(os.path.join(out, f"{split}.es"), encoding="utf-8") as f:
                    splits[split] = set(f.read().splitlines())
            self.assertEqual(sum(len(s) for s in splits.values()), verses)
            self.assertFalse(splits["train"] & (splits["dev"] | splits["test"]))
            self.assertIn("palabra 7 de la verdad", set().union(*splits.values()))
            self.assertTrue(os.path.isfile(os.path.join(out, prepare_data.DONE_FILE)))


if __name__ == "__main__":
    unittest.main()
