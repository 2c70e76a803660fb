"""Wikitext -> plain text, with regular expressions and a few scans (no full parser).

What is kept: prose, list items (one per line, bullets removed), heading text on its own line,
link labels, the text of the few templates that carry prose or numbers (`{{convert|5|km}}` ->
"5 km", `{{lang|fr|texte}}` -> "texte", `{{nowrap|...}}`, dates, fractions... see `_RENDER`).

What is dropped: every other template (infoboxes, citations, navboxes, hatnotes), `<ref>`s and
reference lists, tables (`{| |}` and `<table>`), files/images (with their captions, nested links
included), categories, interlanguage links, magic words (`__TOC__`), comments, galleries and other
extension tags that hold no prose, and sections that end up empty or are reference sections
(References, External links, See also, ... : `DEFAULT_DROP_SECTIONS`).

`<math>` (and `<chem>`, `<ce>`): KEPT as its TeX source on one line, e.g. "area <math>\\pi r^2</math>"
-> "area \\pi r^2". Dropping it leaves holes in sentences ("the area is ."), and a placeholder like
`formula_1` is noise; TeX is what a reader of the source would see. So that no wiki-markup token
survives in the text, whitespace is collapsed and doubled braces/apostrophes in the TeX are
separated by a space (`{{`, `''` -> `{ {`, `' '`), which TeX ignores in math mode.

Order matters: comments first (they hide anything), then verbatim spans (`<nowiki>`, `<pre>`,
`<math>`) are swapped for placeholders so their content is never parsed, then refs,
templates (innermost first, so a rendered template's text can be inside a dropped one), tables,
links (innermost first, so links inside a file caption go away with the file), HTML tags,
bold/italic, lines (headings, lists), sections; HTML entities are decoded last, since `&#124;` and
friends exist precisely to escape markup.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Callable, Iterable

DEFAULT_DISAMBIGUATION_TEMPLATES = (
    "disambiguation",
    "disambig",
    "dab",
    "disamb",
    "hndis",
    "geodis",
    "aimai",
    "曖昧さ回避",
    "人名の曖昧さ回避",
    "地名の曖昧さ回避",
    "αποσαφήνιση",
)

DEFAULT_DROP_SECTIONS = (
    "references",
    "external links",
    "see also",
    "further reading",
    "notes",
    "bibliography",
    "notes and references",
    "sources",
    "citations",
    "footnotes",
    "脚注",
    "出典",
    "注釈",
    "参考文献",
    "関連項目",
    "外部リンク",
)

# Namespace prefixes (lower case) of links that are dropped with everything inside them.
FILE_NAMESPACES = frozenset(
    "file image media datei bild fichier archivo imagen immagine arquivo bestand plik файл изображение "
    "ファイル 画像 媒体 文件 图像 αρχείο εικόνα μέσο".split()
)
CATEGORY_NAMESPACES = frozenset(
    "category kategorie catégorie categoría categoria categorie kategoria категория カテゴリ 分类 κατηγορία".split()
)
_LANG_CODE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]+)*")

# Extension / HTML tags whose content is not prose: removed with their content.
_DROP_CONTENT_TAGS = (
    "ref|references|gallery|timeline|imagemap|graph|mapframe|maplink|score|templatedata|templatestyles|"
    "syntaxhighlight|source|hiero|categorytree|inputbox|includeonly|indicator|table|dynamicpagelist|charinsert"
)
# Tags removed but whose content stays (formatting, layout, `<poem>`, `<blockquote>`...).
_KEEP_CONTENT_TAGS = (
    "b|i|u|s|strike|del|ins|em|strong|code|small|big|sup|sub|span|div|font|center|cite|abbr|dfn|kbd|samp|var|tt|"
    "blockquote|poem|q|bdi|bdo|mark|time|data|ruby|rb|rp|rt|rtc|p|li|ul|ol|dl|dt|dd|h[1-6]|noinclude|"
    "onlyinclude|section|nowiki|wbr|caption|tr|td|th|tbody|thead|tfoot|hr|br|references|ref|gallery|langconvert|"
    "translate|tvar|languages"
)

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_VERBATIM = re.compile(r"<(nowiki|pre|math|chem|ce)\b([^>]*?)(?:/>|>(.*?)</\1\s*>)", re.S | re.I)
_DROP_SELF_CLOSING = re.compile(rf"<(?:{_DROP_CONTENT_TAGS})\b[^>]*/>", re.I)
_DROP_PAIRED = re.compile(rf"<({_DROP_CONTENT_TAGS})\b[^>]*>.*?</\1\s*>", re.S | re.I)
_TEMPLATE = re.compile(r"\{\{((?:[^{}]++|\{(?!\{)|\}(?!\}))*+)\}\}")
_LINK = re.compile(r"\[\[((?:[^\[\]]++|\[(?!\[)|\](?!\]))*+)\]\]")
_EXTERNAL_LINK = re.compile(r"\[(?:(?:[a-zA-Z][a-zA-Z+.-]*:)?//|mailto:)[^\s\]]*(?:[ \t]+([^\]\n]*))?\]")
_HTML_TAG = re.compile(rf"</?(?:{_KEEP_CONTENT_TAGS}|{_DROP_CONTENT_TAGS})\b[^>]*>", re.I)
_BREAK_TAG = re.compile(r"<(?:br|hr|p|li|dd|dt)\b[^>]*>|</(?:p|li|div|dd|dt|blockquote|poem)\s*>", re.I)
_BOLD_ITALIC = re.compile(r"'{2,}")
_MAGIC_WORD = re.compile(r"__(?:[A-Z]+|[^\x00-\x7f\s_]+)__")
_HEADING = re.compile(r"^(={1,6})(.+?)(={1,6})\s*$")
_LIST_PREFIX = re.compile(r"^[*#:;]+\s*")
_HR = re.compile(r"^-{4,}\s*")
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+\n")
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
_SPACES = re.compile(r"[ \t\u00a0\u202f\u2007\u2009\u200a\u2002\u2003]+")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:!?)\]、。，．）])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[（]) +")
_EMPTY_PARENS = re.compile(r" ?\(\s*(?:[,;:.\-–—/]\s*)*\)|（\s*(?:[,;:、，・]\s*)*）")
_LEADING_SEP_IN_PARENS = re.compile(r"([(（])\s*(?:[,;、，]\s*)+")
_TRAILING_SEP_IN_PARENS = re.compile(r"\s*(?:[,;、，]\s*)+([)）])")
_TEMPLATE_NAME = re.compile(r"\{\{\s*([^{}|\n]+?)\s*(?:\||\}\})")


class WikitextError(Exception):
    """Raised for input the converter cannot handle (the caller skips the page)."""


def _norm_name(name: str) -> str:
    name = name.replace("_", " ").strip()
    if name[:9].lower() == "template:":
        name = name[9:].strip()
    return " ".join(name.split()).lower()


@dataclass(frozen=True)
class Converter:
    """Wikitext -> text with a configurable disambiguation-template list and dropped sections."""

    disambiguation_templates: tuple[str, ...] = DEFAULT_DISAMBIGUATION_TEMPLATES
    drop_sections: tuple[str, ...] = DEFAULT_DROP_SECTIONS

    def __post_init__(self) -> None:
        object.__setattr__(self, "_dab", frozenset(_norm_name(n) for n in self.disambiguation_templates))
        object.__setattr__(self, "_drop", frozenset(s.strip().lower() for s in self.drop_sections))

    def is_disambiguation(self, wikitext: str) -> bool:
        if "__DISAMBIG__" in wikitext:
            return True
        dab = self._dab  # type: ignore[attr-defined]
        return any(_norm_name(m.group(1)) in dab for m in _TEMPLATE_NAME.finditer(wikitext))

    def convert(self, wikitext: str, title: str = "") -> str:
        return to_text(wikitext, title, self._drop)  # type: ignore[attr-defined]


def to_text(wikitext: str, title: str = "", drop_sections: Iterable[str] = DEFAULT_DROP_SECTIONS) -> str:
    """Convert one page's wikitext to plain text (see the module docstring)."""
    drop = drop_sections if isinstance(drop_sections, frozenset) else frozenset(s.lower() for s in drop_sections)
    s = _COMMENT.sub("", wikitext)
    # Mark the source's paragraph breaks: a line that only becomes empty during conversion (a
    # file, a category, a template on its own line) must vanish, not split a paragraph.
    s = _BLANK_LINES.sub("\n\x01\n", s)

    verbatim: list[str] = []

    def stash(m: re.Match) -> str:
        tag = m.group(1).lower()
        body = m.group(3) or ""
        if tag in ("math", "chem", "ce"):
            body = _tex_inline(body)
        elif tag == "pre":
            body = body.strip("\n")
        verbatim.append(body)
        return f"\x00{len(verbatim) - 1}\x00"

    s = _VERBATIM.sub(stash, s)
    s = _DROP_SELF_CLOSING.sub("", s)
    s = _DROP_PAIRED.sub("", s)
    s = _expand_templates(s, title)
    s = _drop_tables(s)
    s = _replace_innermost(_LINK, _render_link, s)
    s = _EXTERNAL_LINK.sub(lambda m: m.group(1) or "", s)
    s = _BREAK_TAG.sub("\n", s)
    s = _HTML_TAG.sub("", s)
    s = _BOLD_ITALIC.sub(_bold_italic, s)
    s = _MAGIC_WORD.sub("", s)
    # leftovers of unbalanced markup: never let them into the text
    s = s.replace("{{", "").replace("}}", "").replace("[[", "").replace("]]", "")
    lines = _lines(s, drop)
    s = "\n".join(lines)
    if verbatim:
        s = _PLACEHOLDER.sub(lambda m: verbatim[int(m.group(1))], s)
    s = html.unescape(s)
    return _tidy(s)


def _tex_inline(tex: str) -> str:
    tex = " ".join(tex.split())
    # `{{`, `}}`, `''` are wiki markup to any later reader; a space between them is a no-op in TeX
    while "{{" in tex or "}}" in tex or "''" in tex:
        tex = tex.replace("{{", "{ {").replace("}}", "} }").replace("''", "' '")
    return tex


def _replace_innermost(pattern: re.Pattern, render: Callable[[re.Match], str], s: str) -> str:
    while True:
        s, n = pattern.subn(render, s)
        if n == 0:
            return s


def _bold_italic(m: re.Match) -> str:
    n = len(m.group(0))
    if n == 4:  # an apostrophe followed by bold
        return "'"
    return "'" * (n - 5) if n > 5 else ""


# ---------------------------------------------------------------------------------------------
# templates


def _split_args(inner: str) -> list[str]:
    """Split template content on top-level `|` (not inside `[[...]]`)."""
    if "[[" not in inner:
        return inner.split("|")
    parts = []
    depth = 0
    start = 0
    i = 0
    n = len(inner)
    while i < n:
        c = inner[i]
        if c == "[" and inner.startswith("[[", i):
            depth += 1
            i += 2
            continue
        if c == "]" and inner.startswith("]]", i) and depth:
            depth -= 1
            i += 2
            continue
        if c == "|" and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
        i += 1
    parts.append(inner[start:])
    return parts


@dataclass
class _Args:
    positional: list[str]
    named: dict[str, str]

    def pos(self, i: int, default: str = "") -> str:
        return self.positional[i].strip() if i < len(self.positional) else default

    def get(self, *names: str, default: str = "") -> str:
        for name in names:
            if name in self.named:
                return self.named[name].strip()
        return default


def _parse_args(parts: list[str]) -> _Args:
    positional, named = [], {}
    for part in parts:
        key, eq, value = part.partition("=")
        if eq and "[[" not in key and "\x00" not in key and key.strip() and "<" not in key:
            named[key.strip().lower()] = value
        else:
            positional.append(part)
    return _Args(positional, named)


_MONTHS = "January February March April May June July August September October November December".split()


def _date(a: _Args) -> str:
    y, m, d = a.pos(1), a.pos(2), a.pos(3)
    if not y.isdigit():
        return y
    if m.isdigit() and 1 <= int(m) <= 12:
        month = _MONTHS[int(m) - 1]
        return f"{int(d)} {month} {y}" if d.isdigit() else f"{month} {y}"
    if m:
        return f"{d} {m} {y}".strip() if d else f"{m} {y}"
    return y


_CONVERT_UNITS = {
    "km2": "km²", "sqkm": "km²", "m2": "m²", "sqmi": "sq mi", "sqft": "sq ft", "cm2": "cm²",
    "km3": "km³", "m3": "m³", "c": "°C", "f": "°F", "kmh": "km/h", "kph": "km/h", "km/h": "km/h",
    "acre": "acres", "ha": "ha", "usgal": "US gal", "impgal": "imp gal", "l": "L", "e6km2": "million km²",
}
_CONVERT_RANGE = {"to": "to", "-": "–", "–": "–", "and": "and", "or": "or", "x": "×", "by": "by", "+/-": "±", "to(-)": "to"}
_CONVERT_COMPOUND = {("ft", "in"), ("lb", "oz"), ("st", "lb"), ("mi", "yd"), ("mi", "ft")}


def _unit(code: str) -> str:
    code = code.strip()
    return _CONVERT_UNITS.get(code.lower(), _CONVERT_UNITS.get(code, code))


def _convert(a: _Args) -> str:
    p = [x.strip() for x in a.positional[1:]]
    if not p:
        return ""
    out = [p[0]]
    i = 1
    while i + 1 < len(p) and p[i] in _CONVERT_RANGE:
        out += [_CONVERT_RANGE[p[i]], p[i + 1]]
        i += 2
    unit = p[i] if i < len(p) else ""
    text = " ".join(out)
    if out[1:2] == ["–"]:
        text = "".join(out)
    text = f"{text} {_unit(unit)}".strip()
    # 5|ft|6|in -> "5 ft 6 in"
    if i + 2 < len(p) and (unit, p[i + 2]) in _CONVERT_COMPOUND and p[i + 1]:
        text += f" {p[i + 1]} {p[i + 2]}"
    return text


def _frac(a: _Args) -> str:
    p = [x for x in (a.pos(1), a.pos(2), a.pos(3)) if x]
    if len(p) == 3:
        return f"{p[0]} {p[1]}/{p[2]}"
    if len(p) == 2:
        return f"{p[0]}/{p[1]}"
    return f"1/{p[0]}" if p else ""


def _as_of(a: _Args) -> str:
    parts = [a.pos(1)]
    if a.pos(2).isdigit() and 1 <= int(a.pos(2)) <= 12:
        month = _MONTHS[int(a.pos(2)) - 1]
        parts = [f"{a.pos(3)} {month} {a.pos(1)}".strip()] if a.pos(3) else [f"{month} {a.pos(1)}"]
    prefix = "as of" if a.get("lc") in ("y", "yes") else "As of"
    return f"{prefix} {parts[0]}"


def _listing(a: _Args) -> str:
    name = a.get("name")
    content = a.get("content")
    return f"{name}: {content}" if name and content else name or content


def _nihongo(a: _Args) -> str:
    english, kanji, romaji = a.pos(1), a.pos(2), a.pos(3)
    extra = ", ".join(x for x in (kanji, romaji) if x)
    return f"{english} ({extra})" if english and extra else english or kanji


def _yomigana(a: _Args) -> str:
    return f"{a.pos(1)}（{a.pos(2)}）" if a.pos(2) else a.pos(1)


def _last_positional(a: _Args) -> str:
    return a.pos(len(a.positional) - 1) if len(a.positional) > 1 else ""


def _first(a: _Args) -> str:
    return a.pos(1)


def _second(a: _Args) -> str:
    return a.pos(2) or a.pos(1)


def _joined(sep: str) -> Callable[[_Args], str]:
    return lambda a: sep.join(x.strip() for x in a.positional[1:] if x.strip())


def _const(text: str) -> Callable[[_Args], str]:
    return lambda a: text


_RENDER: dict[str, Callable[[_Args], str]] = {
    "convert": _convert, "cvt": _convert,
    "lang": _last_positional, "transl": _last_positional, "transliteration": _last_positional,
    "nowrap": _first, "nobr": _first, "nobreak": _first, "small": _first, "smaller": _first, "big": _first,
    "larger": _first, "large": _first, "huge": _first, "resize": _last_positional, "sc": _first, "smallcaps": _first, "small caps": _first, "sic": _last_positional,
    "math": _first, "mvar": _first, "var": _first, "em": _first, "strong": _first, "abbr": _first,
    "tooltip": _first, "vanchor": _first, "visible anchor": _first, "flag": _first, "flagcountry": _first,
    "lsj": _second, "angbr": lambda a: f"⟨{a.pos(1)}⟩", "keypress": _joined("+"), "chem": _joined(""),
    "chem2": _first, "val": _first, "nts": _first, "ntsh": _first, "formatnum": _first, "ruby": _first,
    "quote": lambda a: a.get("text", "quote") or a.pos(1), "blockquote": lambda a: a.get("text", "quote") or a.pos(1),
    "cquote": lambda a: a.get("text", "quote") or a.pos(1), "quotation": _first, "quote box": lambda a: a.get("quote"),
    "as of": _as_of, "circa": lambda a: f"c. {a.pos(1)}".strip(), "c.": lambda a: f"c. {a.pos(1)}".strip(),
    "frac": _frac, "sfrac": _frac, "fraction": _frac,
    "birth date": _date, "death date": _date, "start date": _date, "end date": _date, "dts": _date,
    "birth date and age": _date, "death date and age": lambda a: _date(_Args(a.positional[:4], {})),
    "birth year and age": _first, "death year and age": _first,
    "nihongo": _nihongo, "nihongo2": _first, "native name": _second, "lang-en-short": _first,
    "読み仮名": _yomigana, "読み仮名 ruby不使用": _yomigana, "仮リンク": _first, "ill": _first, "ill2": _first, "interlanguage link": _first, "interlanguage link multi": _first,
    "ubl": _joined("\n"), "unbulleted list": _joined("\n"), "plainlist": _first, "flatlist": _first,
    "hlist": _joined(", "), "color": _second, "colour": _second, "font color": _last_positional, "linktext": _joined(" "),
    "script": _last_positional, "audio": _second, "ήχος": _last_positional,
    "marker": lambda a: a.get("name"), "listing": _listing, "see": _listing, "do": _listing, "buy": _listing,
    "eat": _listing, "drink": _listing, "sleep": _listing, "go": _listing,
    "!": _const("|"), "=": _const("="), "'": _const("'"), "'s": _const("'s"), "pipe": _const("|"),
    "·": _const(" · "), "dot": _const(" · "), "•": _const(" • "), "bull": _const(" • "),
    "snd": _const(" – "), "spnd": _const(" – "), "spaced ndash": _const(" – "), "spaced en dash": _const(" – "),
    "ndash": _const("–"), "en dash": _const("–"), "mdash": _const("—"), "em dash": _const("—"),
    "nbsp": _const(" "), "sp": _const(" "), "spaces": _const(" "), "thinsp": _const(" "),
    "lc:": _first, "uc:": _first, "lcfirst:": _first, "ucfirst:": _first,
}


def _render_template(inner: str, title: str) -> str:
    parts = _split_args(inner)
    name = parts[0]
    if ":" in name:
        # parser functions ({{#if:...}}) and magic words ({{DEFAULTSORT:x}}, {{formatnum:1,234}})
        head, _, rest = name.partition(":")
        key = head.strip().lower()
        if key in ("formatnum", "lc", "uc", "lcfirst", "ucfirst"):
            rest = rest.strip()
            if key == "lc":
                return rest.lower()
            if key == "uc":
                return rest.upper()
            return rest
        if key.startswith("#"):
            return ""
        if key != "template":
            return ""
    key = _norm_name(name)
    if key in ("pagename", "fullpagename", "pagenamee"):
        return title
    render = _RENDER.get(key)
    if render is None:
        if key.startswith("lang-") or key.startswith("lang "):
            render = _last_positional
        else:
            return ""
    return render(_parse_args(parts))


def _expand_templates(s: str, title: str) -> str:
    if "{{" not in s:
        return s
    return _replace_innermost(_TEMPLATE, lambda m: _render_template(m.group(1), title), s)


# ---------------------------------------------------------------------------------------------
# tables, links


def _drop_tables(s: str) -> str:
    if "{|" not in s:
        return s
    out = []
    depth = 0
    for line in s.split("\n"):
        stripped = line.lstrip(" :\t")
        if stripped.startswith("{|"):
            depth += 1
            continue
        if depth:
            if stripped.startswith("|}"):
                depth -= 1
            continue
        out.append(line)
    return "\n".join(out)


def _render_link(m: re.Match) -> str:
    inner = m.group(1)
    target, sep, label = inner.partition("|")
    target = target.strip()
    leading_colon = target.startswith(":")
    if leading_colon:
        target = target[1:].strip()
    if ":" in target:
        prefix = target.split(":", 1)[0].strip().lower()
        if not leading_colon:
            if prefix in FILE_NAMESPACES or prefix in CATEGORY_NAMESPACES:
                return ""
            if not sep and _LANG_CODE.fullmatch(prefix):
                return ""  # interlanguage link
        if not (sep and label.strip()):
            # [[:Category:Foo]], [[wikt:word]] -> the name without its prefix
            target = target.split(":", 1)[1] if (prefix in FILE_NAMESPACES or prefix in CATEGORY_NAMESPACES
                                                 or _LANG_CODE.fullmatch(prefix) or len(prefix) <= 5) else target
    if sep:
        if label.strip():
            return label
        # pipe trick: [[Foo (bar)|]] -> "Foo"
        return re.sub(r"\s*\(.*\)\s*$", "", target.split(":", 1)[-1]).strip()
    if "#" in target:
        page, _, fragment = target.partition("#")
        return page.strip() or fragment.strip()
    return target


# ---------------------------------------------------------------------------------------------
# lines and sections


def _lines(s: str, drop: frozenset[str]) -> list[str]:
    """Headings, list items and paragraphs -> clean lines; drop empty and reference sections."""
    # sections: (level, heading text, body lines); level 0 = lead
    sections: list[tuple[int, str, list[str]]] = [(0, "", [])]
    for raw in s.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line == "\x01":
            sections[-1][2].append("")
            continue
        line = line.replace("\x01", "")
        h = _HEADING.match(line)
        if h:
            level = min(len(h.group(1)), len(h.group(3)))
            text = h.group(2).strip(" =")
            if text:
                sections.append((level, _SPACES.sub(" ", text).strip(), []))
            continue
        if line[0] == "|" or line.startswith("{|") or (line[0] == "!" and (line[1:2] in ("", " ", "!") or "!!" in line)):
            continue  # leftovers of a table or template the scans could not balance (but "!Kung" is prose)
        if line[0] in "*#:;":
            line = _LIST_PREFIX.sub("", line)
            if line.startswith(("{|", "|")):
                continue
        elif _HR.match(line):
            line = _HR.sub("", line)
        if line:
            sections[-1][2].append(line)
    keep = _keep_sections(sections, drop)
    out: list[str] = []
    for (level, heading, body), kept in zip(sections, keep):
        if not kept:
            continue
        if level:
            if out and out[-1] != "":
                out.append("")
            out.append(heading)
        for line in body:
            if line == "" and (not out or out[-1] == ""):
                continue
            out.append(line)
    while out and out[-1] == "":
        out.pop()
    return out


def _keep_sections(sections: list[tuple[int, str, list[str]]], drop: frozenset[str]) -> list[bool]:
    n = len(sections)
    keep = [True] * n
    # a listed section goes with all its subsections
    i = 0
    while i < n:
        level, heading, _ = sections[i]
        if level and heading.strip().lower().rstrip(":") in drop:
            keep[i] = False
            j = i + 1
            while j < n and sections[j][0] > level:
                keep[j] = False
                j += 1
            i = j
            continue
        i += 1
    # a heading with nothing under it (after conversion) goes; parents of only-empty children too
    has_text = [any(line for line in body) for _, _, body in sections]
    for i in range(n - 1, 0, -1):
        if not keep[i]:
            continue
        level = sections[i][0]
        if has_text[i]:
            continue
        j = i + 1
        child = False
        while j < n and sections[j][0] > level:
            if keep[j]:
                child = True
                break
            j += 1
        if not child:
            keep[i] = False
    return keep


def _tidy(s: str) -> str:
    out = []
    for line in s.split("\n"):
        line = _SPACES.sub(" ", line).replace("\u00ad", "")
        if "(" in line or "（" in line:
            line = _LEADING_SEP_IN_PARENS.sub(r"\1", line)
            line = _TRAILING_SEP_IN_PARENS.sub(r"\1", line)
            line = _EMPTY_PARENS.sub("", line)
            line = _SPACE_AFTER_OPEN.sub(r"\1", line)
        line = _SPACE_BEFORE_PUNCT.sub(r"\1", line).strip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


# ---------------------------------------------------------------------------------------------
# quality check shared by the tests and bench/bench_extract.py

LEFTOVER_MARKUP = {
    "thumb|": re.compile(r"thumb\|"),
    "Category:": re.compile(r"Category:"),
    r"\d+px": re.compile(r"\d+px"),
    "line starts with |": re.compile(r"^\|", re.M),
    "{{": re.compile(r"\{\{"),
    "}}": re.compile(r"\}\}"),
    "<ref": re.compile(r"<ref", re.I),
    "''": re.compile(r"''"),
    "==": re.compile(r"=="),
    "formula_": re.compile(r"formula_"),
    "empty ()": re.compile(r"\(\s*\)"),
}


def count_leftover_markup(text: str) -> dict[str, int]:
    """Occurrences of each class of wiki markup that should never survive conversion."""
    return {name: len(rx.findall(text)) for name, rx in LEFTOVER_MARKUP.items()}
