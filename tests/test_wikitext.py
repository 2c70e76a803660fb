"""wikitext -> plain text, one markup class at a time."""

from __future__ import annotations

import pytest

from wikigpt.data.wikitext import Converter, to_text

conv = Converter()


def t(wikitext: str, title: str = "T") -> str:
    return conv.convert(wikitext, title)


def test_bold_italic_marks_removed():
    assert t("'''Bold''' and ''italic'' and '''''both''''' and ''''x''''") == "Bold and italic and both and 'x'"


@pytest.mark.parametrize(
    "src, out",
    [
        ("a [[Paris]] b", "a Paris b"),
        ("a [[Paris|the city]] b", "a the city b"),
        ("[[dog]]s bark", "dogs bark"),
        ("[[Paris (France)|]] x", "Paris x"),  # pipe trick
        ("[[Paris#History|history of Paris]]", "history of Paris"),
        ("[[Paris#History]]", "Paris"),
        ("see [[Wikipedia:Manual of Style|the manual]]", "see the manual"),
        ("a [[wikt:anarchy|anarchy]] b", "a anarchy b"),
        ("the [[:Category:Cities|list of cities]]", "the list of cities"),
    ],
)
def test_internal_links_become_labels(src, out):
    assert t(src) == out


def test_external_links():
    assert t("See [http://example.org the site] now") == "See the site now"
    assert t("Cited [https://example.org/x?a=1] here.") == "Cited here."
    assert t("proto [//example.org relative] x") == "proto relative x"


def test_files_with_nested_links_in_captions_dropped():
    src = (
        "Before.\n[[File:Map.png|thumb|250px|A map of [[Paris]] and [[Lyon|the city of Lyon]] "
        "([http://x.org source])]]\nAfter [[Image:x.jpg|left|upright]] text.\n"
        "[[ファイル:Tokyo.jpg|thumb|東京]]日本"
    )
    out = t(src)
    assert out == "Before.\nAfter text.\n日本"


def test_categories_and_interlanguage_links_dropped():
    src = "Text.\n\n[[Category:Cities]]\n[[Category:Capitals|Paris]]\n[[カテゴリ:都市]]\n[[fr:Paris]]\n[[de:Paris]]\n[[zh-yue:巴黎]]"
    assert t(src) == "Text."


def test_templates_dropped_and_rendered():
    src = """{{Infobox country
| name = Foo
| area = {{convert|5|km2}}
| map = [[File:x.png|thumb|y]]
}}
'''Foo''' is {{convert|5|km}} long and {{convert|1200|m|ft}} high,{{citation needed|date=May 2015}} or {{convert|5|to|10|mi}}.
Say {{lang|fr|[[Paris|la ville]]}} and {{nowrap|10 kg}}, {{lang-de|Stadt}}, {{frac|1|2}}, {{as of|2010}}."""
    assert t(src) == (
        "Foo is 5 km long and 1200 m high, or 5 to 10 mi.\n"
        "Say la ville and 10 kg, Stadt, 1/2, As of 2010."
    )


def test_more_template_renderings():
    assert t("{{convert|5|-|10|km}} and {{convert|6|ft|2|in|m}}") == "5–10 km and 6 ft 2 in"
    assert t("{{nihongo|Tokyo|東京|Tōkyō}} is big") == "Tokyo (東京, Tōkyō) is big"
    assert t("{{仮リンク|ロンドン塔|en|Tower of London}}は城") == "ロンドン塔は城"
    assert t("{{読み仮名|東京|とうきょう}}") == "東京（とうきょう）"
    assert t("born {{birth date|1990|5|3}}") == "born 3 May 1990"
    assert t("{{DEFAULTSORT:Foo}}{{デフォルトソート:ふー}}{{#if:x|y|z}}Text") == "Text"
    assert t("{{PAGENAME}} is", title="Zed") == "Zed is"


def test_unknown_nested_templates_leave_nothing():
    assert t("A {{outer|x={{inner|{{deep}}}}|[[link|y]]}} B") == "A B"


def test_refs_and_reference_lists_dropped():
    src = (
        'Claim.<ref name="a">{{cite web|url=http://x|title=T}}</ref> More<ref name=b/>.'
        "<ref group=n>Note with [[link]]</ref>\n\n== References ==\n<references />\n{{reflist}}"
    )
    assert t(src) == "Claim. More."


def test_tables_dropped_including_nested():
    src = "Intro.\n{| class=\"wikitable\"\n! H1 !! H2\n|-\n| a || b\n|-\n|\n{|\n| inner\n|}\n|}\nOutro.\n<table><tr><td>x</td></tr></table>"
    out = t(src)
    assert out == "Intro.\nOutro."
    assert not any(line.startswith("|") for line in out.splitlines())


def test_comments_and_magic_words_dropped():
    assert t("a<!-- hidden\nmultiline -->b __NOTOC__ c __TOC__") == "ab c"
    assert t("visible<!-- never closed") == "visible"


def test_headings_lists_and_sections():
    src = """Lead text.

== History ==
Old times with [[Rome]].

=== Empty sub ===
{{main|X}}

== Kinds ==
* first item
* second [[item]]
** nested item
# numbered
; term
: definition

== See also ==
* [[Other]]

== References ==
{{reflist}}

== External links ==
* [http://x.org Site]
[[Category:X]]"""
    assert t(src) == (
        "Lead text.\n\nHistory\nOld times with Rome.\n\nKinds\n"
        "first item\nsecond item\nnested item\nnumbered\nterm\ndefinition"
    )


def test_drop_sections_configurable():
    keep_all = Converter(drop_sections=())
    src = "Lead.\n== See also ==\n* [[Other]]"
    assert keep_all.convert(src) == "Lead.\n\nSee also\nOther"
    assert conv.convert(src) == "Lead."


def test_entities_and_nbsp():
    assert t("5&nbsp;km &amp; 3\u00a0m &lt;tag&gt; &eacute; &#124; &mdash;") == "5 km & 3 m <tag> é | —"


def test_math_kept_as_tex_source():
    out = t("The area is <math>\\pi r^2</math>.\n:<math display=\"block\">\n\\frac{{a}}{b} + f''(x)\n</math>")
    assert out == "The area is \\pi r^2.\n\\frac{ {a} }{b} + f' '(x)"


def test_nowiki_is_literal_code_is_not():
    assert t("<nowiki>''not italic''</nowiki> and <code>x = {y}</code>") == "''not italic'' and x = {y}"
    assert t("<code>A \'\'\'&amp;&amp;\'\'\' B</code>") == "A && B"  # <code> is HTML: markup inside applies


def test_html_tags():
    assert t("<small>small</small> line<br />next <span style=\"x\">span</span>\n<gallery>\nA.jpg|cap\n</gallery>") == (
        "small line\nnext span"
    )


def test_empty_parentheses_cleaned():
    assert t("Foo ({{IPAc-en|f|u}}) is") == "Foo is"
    assert t("Bar ({{IPA|x}}; Arabic: ب) is") == "Bar (Arabic: ب) is"


def test_unclosed_table_rows_dropped_but_not_prose_starting_with_bang():
    assert t("Text.\n! Header !! Other\n| cell\n!Kung people live in the Kalahari.") == (
        "Text.\n!Kung people live in the Kalahari."
    )


def test_unbalanced_markup_never_leaks():
    out = t("A {{broken template\nB [[broken link\nC }} D ]] E")
    for token in ("{{", "}}", "[[", "]]"):
        assert token not in out


def test_disambiguation_detection():
    for src in ("{{Disambiguation}}", "x\n{{disambig|geo}}", "{{Aimai}}", "{{曖昧さ回避}}", "{{ dab }}", "__DISAMBIG__",
                "{{Template:Disambiguation}}", "{{Hndis|name}}"):
        assert conv.is_disambiguation(src), src
    for src in ("Plain text", "{{Infobox}}", "{{disambiguation needed}}", "{{Otheruses|Foo (disambiguation)}}"):
        assert not conv.is_disambiguation(src), src
    custom = Converter(disambiguation_templates=("Begriffsklärung",))
    assert custom.is_disambiguation("{{begriffsklärung}}") and not custom.is_disambiguation("{{disambiguation}}")


def test_module_function_matches_converter():
    src = "== See also ==\nx"
    assert to_text(src) == conv.convert(src) == ""
