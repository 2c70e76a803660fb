"""Generate the bundled sample dump: a small MediaWiki export about an invented world.

`wikigpt make-sample [--out DIR]` writes, byte for byte reproducibly,

- `wikisample-pages-articles-multistream.xml.bz2`: Wikimedia's multistream layout. Stream 0 holds
  `<mediawiki ...>` and the `<siteinfo>`; then one bz2 stream per `PAGES_PER_STREAM` pages (raw
  `<page>` elements, no namespace declaration, exactly as in the real dumps); a last stream holds
  `</mediawiki>`. `bz2.open` reads the whole thing as one document.
- `wikisample-pages-articles-multistream-index.txt.bz2`: `byte_offset:page_id:title` per page,
  the offset being that of the bz2 stream holding the page.

Everything about the world (kingdoms, cities, rivers, people, animals, foods...) is original and
generated here from word lists and sentence templates, so the text is free to redistribute. Facts
are drawn once per entity and restated identically wherever the entity is mentioned, so a tiny
model trained on the sample can learn associations ("Arvel is a city in the Kingdom of Mosk").
The articles exercise the markup an extractor has to handle (infoboxes and nested templates,
`{{convert}}`, refs, tables, files, categories, interlanguage links, lists, headings, `<math>`,
entities and NBSP, comments, magic words) and the page kinds it has to sort (redirects, other
namespaces, disambiguation pages, non-English articles, exact and near duplicates, pages that are
empty once cleaned).

Determinism: one seeded `random.Random` builds the world, and every article draws from its own RNG
seeded by (kind, title) strings, so no output depends on set order, hash seeds or the clock.
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from wikigpt.io import atomic_file

DEFAULT_OUT = Path("data/sample")
DUMP_NAME = "wikisample-pages-articles-multistream.xml.bz2"
INDEX_NAME = "wikisample-pages-articles-multistream-index.txt.bz2"
SEED = 20240501
PAGES_PER_STREAM = 20  # Wikimedia uses 100; fewer gives the small sample many streams
TIMESTAMP = "2024-05-01T12:00:00Z"
SITENAME = "Wikisample"
EXPORT_NS = "http://www.mediawiki.org/xml/export-0.11/"

# (key, name) of the namespace table in <siteinfo>; key 4 is the project namespace.
NAMESPACES = [
    (-2, "Media"), (-1, "Special"), (0, ""), (1, "Talk"), (2, "User"), (3, "User talk"),
    (4, SITENAME), (5, f"{SITENAME} talk"), (6, "File"), (7, "File talk"), (8, "MediaWiki"),
    (9, "MediaWiki talk"), (10, "Template"), (11, "Template talk"), (12, "Help"), (13, "Help talk"),
    (14, "Category"), (15, "Category talk"), (100, "Portal"), (101, "Portal talk"),
    (828, "Module"), (829, "Module talk"),
]
NS_BY_NAME = {name: key for key, name in NAMESPACES if name}
CONTRIBUTORS = [("Archivist", 11), ("Cartographer", 27), ("RiverWalker", 42), ("Lanternkeeper", 58)]
NBSP = "\u00a0"


# --------------------------------------------------------------------------------------------
# Invented names, and their German/French (as is), Greek and Japanese renderings
# --------------------------------------------------------------------------------------------

ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v",
          "br", "dr", "kr", "tr", "st", "th"]
VOWELS = ["a", "e", "i", "o", "u"]
CODAS = ["", "", "", "n", "r", "l", "s"]

_KANA = {
    "": ["ア", "イ", "ウ", "エ", "オ"], "k": ["カ", "キ", "ク", "ケ", "コ"],
    "g": ["ガ", "ギ", "グ", "ゲ", "ゴ"], "s": ["サ", "シ", "ス", "セ", "ソ"],
    "th": ["サ", "シ", "ス", "セ", "ソ"], "t": ["タ", "ティ", "トゥ", "テ", "ト"],
    "d": ["ダ", "ディ", "ドゥ", "デ", "ド"], "n": ["ナ", "ニ", "ヌ", "ネ", "ノ"],
    "h": ["ハ", "ヒ", "フ", "ヘ", "ホ"], "f": ["ファ", "フィ", "フ", "フェ", "フォ"],
    "b": ["バ", "ビ", "ブ", "ベ", "ボ"], "p": ["パ", "ピ", "プ", "ペ", "ポ"],
    "m": ["マ", "ミ", "ム", "メ", "モ"], "r": ["ラ", "リ", "ル", "レ", "ロ"],
    "l": ["ラ", "リ", "ル", "レ", "ロ"], "v": ["ヴァ", "ヴィ", "ヴ", "ヴェ", "ヴォ"],
}
_KANA_CLUSTER_HEAD = {"b": "ブ", "d": "ド", "k": "ク", "t": "ト", "s": "ス"}
_KANA_CODA = {"": "", "n": "ン", "r": "ル", "l": "ル", "s": "ス"}
_GREEK_ONSET = {
    "": "", "b": "μπ", "d": "ντ", "f": "φ", "g": "γκ", "h": "χ", "k": "κ", "l": "λ", "m": "μ",
    "n": "ν", "p": "π", "r": "ρ", "s": "σ", "t": "τ", "v": "β", "br": "μπρ", "dr": "ντρ",
    "kr": "κρ", "tr": "τρ", "st": "στ", "th": "θ",
}
_GREEK_VOWEL = {"a": "α", "e": "ε", "i": "ι", "o": "ο", "u": "ου"}
_GREEK_CODA = {"": "", "n": "ν", "r": "ρ", "l": "λ", "s": "σ"}


@dataclass(frozen=True)
class Name:
    """An invented name kept as syllables, so it can be transliterated."""

    syllables: tuple[tuple[str, str, str], ...]

    @property
    def text(self) -> str:
        return "".join("".join(s) for s in self.syllables).capitalize()

    def __str__(self) -> str:
        return self.text

    @property
    def adjective(self) -> str:
        t = self.text
        if t[-1] in "aeiou":
            return t + "n"
        if t[-1] == "s":
            return t[:-1] + "sian"
        return t + "ian"

    @property
    def katakana(self) -> str:
        out = []
        for onset, vowel, coda in self.syllables:
            v = "aiueo".index(vowel)  # kana rows are in a-i-u-e-o order
            if len(onset) == 2 and onset != "th":
                out.append(_KANA_CLUSTER_HEAD[onset[0]] + _KANA[onset[1]][v])
            else:
                out.append(_KANA[onset][v])
            out.append(_KANA_CODA[coda])
        return "".join(out)

    @property
    def greek(self) -> str:
        out = "".join(_GREEK_ONSET[o] + _GREEK_VOWEL[v] + _GREEK_CODA[c] for o, v, c in self.syllables)
        if out.endswith("σ"):
            out = out[:-1] + "ς"
        return out[0].upper() + out[1:]


class NameMaker:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()  # membership only; never iterated

    def make(self, lo: int = 2, hi: int = 3) -> Name:
        rng = self.rng
        while True:
            n = rng.randint(lo, hi)
            syl = []
            for i in range(n):
                onset = "" if (i == 0 and rng.random() < 0.12) else rng.choice(ONSETS)
                coda = rng.choice(CODAS) if i == n - 1 or rng.random() < 0.25 else ""
                syl.append((onset, rng.choice(VOWELS), coda))
            name = Name(tuple(syl))
            t = name.text
            if 4 <= len(t) <= 10 and t.lower() not in self.used and t.lower() not in BANNED_NAMES:
                self.used.add(t.lower())
                return name


# Generated names that are real English words or too close to real places are skipped.
BANNED_NAMES = {"atlas", "gold", "mister", "tutu", "data", "hare", "hilo", "kilo", "samba",
                "sofa", "soda", "rome", "roma", "paris", "delta", "doha", "lima", "oslo", "bern",
                "sudan", "milan", "malta", "riga", "kiev", "minsk", "bonn", "lagos", "turin"}

# --------------------------------------------------------------------------------------------
# The world model
# --------------------------------------------------------------------------------------------


class Entity:
    """One thing with an article. Facts are plain attributes, drawn once and reused everywhere."""

    def __init__(self, etype: str, title: str, **facts):
        self.etype = etype
        self.title = title
        self.__dict__.update(facts)

    def link(self, label: str | None = None) -> str:
        return f"[[{self.title}|{label}]]" if label and label != self.title else f"[[{self.title}]]"

    def __repr__(self) -> str:
        return f"<{self.etype} {self.title}>"


OCCUPATIONS = ["poet", "astronomer", "general", "cartographer", "architect", "physician",
               "composer", "philosopher", "explorer", "painter", "mathematician", "merchant",
               "engineer", "historian", "weaver", "sculptor"]
WORK_OCCUPATIONS = {"poet": "poems", "composer": "compositions", "philosopher": "treatises",
                    "historian": "chronicles", "painter": "paintings", "mathematician": "treatises",
                    "astronomer": "treatises", "cartographer": "maps", "sculptor": "sculptures",
                    "explorer": "travel accounts", "architect": "buildings", "physician": "treatises"}
INDUSTRIES = ["salt mining", "glassmaking", "wool weaving", "boatbuilding", "copper smelting",
              "paper making", "dye works", "beekeeping", "timber", "horse breeding", "clockmaking",
              "lantern making", "pottery", "tanning", "rope making", "fishing", "stone quarrying",
              "silver mining", "brewing", "bell founding"]
INGREDIENTS = ["barley", "rye", "goat cheese", "river trout", "smoked eel", "juniper berries",
               "honey", "chestnuts", "lentils", "sorrel", "plums", "mutton", "walnuts", "emberleaf",
               "sallow root", "buckwheat", "sour cream", "wild garlic", "pike", "millet", "quince",
               "hazelnuts", "beans", "pears", "mushrooms", "leeks", "sheep's milk", "dried apricots"]
FOOD_KINDS = ["flatbread", "stew", "cheese", "dumpling", "pastry", "soup", "spirit",
              "sausage", "porridge", "pie", "cake", "tea"]
ANIMAL_KINDS = [  # (kind, class word, habitat kind)
    ("wading bird", "bird", "river"), ("songbird", "bird", "forest"), ("fish", "fish", "river"),
    ("deer", "mammal", "forest"), ("lizard", "reptile", "mountain"), ("beetle", "insect", "forest"),
    ("wolf", "mammal", "mountain"), ("wild goat", "mammal", "mountain"), ("otter", "mammal", "river"),
    ("moth", "insect", "forest"), ("frog", "amphibian", "lake"), ("owl", "bird", "forest"),
    ("eel", "fish", "lake"), ("eagle", "bird", "mountain"), ("crab", "crustacean", "lake"),
]
COLOURS = ["silver", "rust-red", "slate-grey", "amber", "black", "white-spotted", "olive-green",
           "pale blue", "copper-brown", "striped grey"]
DIETS = ["insects", "small fish", "grasses", "berries", "small mammals", "lichens", "seeds",
         "snails", "water plants", "carrion"]
CELEBRATIONS = ["the first thaw", "the grain harvest", "the spring flood of the river",
                "the founding of the city", "the longest day", "the shearing of the sheep",
                "the return of the herons", "the first wine", "the end of the salt season",
                "the lighting of the lanterns", "the new year", "the memory of the great fire"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
INSTRUMENT_KINDS = [("bowed string instrument", "strings"), ("plucked string instrument", "strings"),
                    ("flute", "holes"), ("drum", "skins"), ("horn", "valves"), ("bagpipe", "drones")]
GIVEN_F = 0.5
NAME_MEANINGS = ["ford of the herons", "salt hill", "white water", "the market", "the old bridge", "grey stone",
                 "the quiet harbour", "meadow of bells", "the high fort", "willow bank", "the red cliff",
                 "place of springs", "the long field", "eagle rock", "the lantern", "the winter camp",
                 "the mill", "the crossing", "green valley", "the watchtower"]


class World:
    def __init__(self, seed: int = SEED):
        rng = random.Random(seed)
        names = NameMaker(rng)
        self.rng = rng
        self.continent = names.make(3, 3)
        self.kingdoms: list[Entity] = []
        self.languages: list[Entity] = []
        self.scripts = [f"{names.make(2, 2)} script" for _ in range(4)]
        for i in range(8):
            n = names.make(1, 2) if i % 2 else names.make(2, 2)
            k = Entity("kingdom", f"Kingdom of {n}", name=n.text, nm=n, adj=n.adjective,
                       founded=rng.randint(640, 980), area=rng.randint(18, 160) * 1000,
                       currency=f"{names.make(1, 2).text.lower()}", colour=rng.choice(COLOURS[:6]),
                       position=["north", "south", "east", "west", "north-east", "south-west",
                                 "north-west", "south-east"][i])
            lang = Entity("language", f"{n.adjective} language", name=f"{n.adjective}",
                          kingdom=k, code=(n.text[:2] + "x").lower() if i < 4 else (n.text[:3]).lower(),
                          script=self.scripts[i % 4], speakers=0, suffix=rng.choice(["en", "a", "ith", "or", "ek", "i"]),
                          family=["Vessic", "Oran", "Vessic", "Tallic"][i % 4])
            k.language = lang
            self.kingdoms.append(k)
            self.languages.append(lang)
        for i, k in enumerate(self.kingdoms):
            k.neighbours = [self.kingdoms[(i + 1) % 8], self.kingdoms[(i + 3) % 8]]

        # Mountains and ranges
        self.ranges: list[Entity] = []
        for i in range(5):
            n = names.make()
            ks = [self.kingdoms[i], self.kingdoms[(i + 5) % 8]] if i < 3 else [self.kingdoms[i]]
            self.ranges.append(Entity("range", f"{n} Mountains", name=n.text, kingdoms=ks,
                                      length=rng.randint(12, 60) * 10, peaks=[]))
        self.mountains: list[Entity] = []
        for i in range(24):
            n = names.make()
            rg = self.ranges[i % 5]
            title = f"Mount {n}" if i % 3 else f"{n} Peak"
            m = Entity("mountain", title, name=n.text, range=rg, kingdom=rg.kingdoms[i % len(rg.kingdoms)],
                       height=rng.randint(110, 520) * 10, prominence=rng.randint(30, 180) * 10,
                       rock=rng.choice(["granite", "limestone", "basalt", "slate", "sandstone", "gneiss"]),
                       ascent_year=None, climber=None, rivers=[])
            rg.peaks.append(m)
            self.mountains.append(m)
        for rg in self.ranges:
            rg.highest = max(rg.peaks, key=lambda m: (m.height, m.title))

        # Lakes and seas
        self.waters: list[Entity] = []
        for i in range(8):
            n = names.make()
            sea = i < 3
            self.waters.append(Entity("water", f"{n} Sea" if sea else f"Lake {n}", name=n.text, sea=sea,
                                      kingdom=self.kingdoms[(i * 3) % 8],
                                      area=rng.randint(800, 9000) * (40 if sea else 1),
                                      depth=rng.randint(20, 400) * (8 if sea else 1)))

        # Cities: the first eight are the capitals.
        self.cities: list[Entity] = []
        for i in range(70):
            n = names.make()
            k = self.kingdoms[i % 8]
            capital = i < 8
            pop = rng.randint(100, 420) * 1000 + rng.randint(0, 9) * 100 if capital else \
                rng.choice([rng.randint(2, 19), rng.randint(20, 90)]) * 1000 + rng.randint(1, 9) * 100
            c = Entity("city", n.text, name=n.text, nm=n, kingdom=k, capital=capital, population=pop,
                       founded=rng.randint(k.founded - 150, k.founded) if capital else rng.randint(k.founded - 200, 1300),
                       elevation=rng.randint(2, 180) * 10, meaning=rng.choice(NAME_MEANINGS),
                       area=round(pop / rng.randint(900, 4000), 1) + 1.0,
                       industries=rng.sample(INDUSTRIES, 3), river=None, water=None, people=[],
                       foods=[], festivals=[], native=n.text + k.language.suffix,
                       census=rng.choice([1488, 1492, 1497, 1499]))
            if capital:
                k.capital = c
            self.cities.append(c)
        for k in self.kingdoms:
            k.cities = [c for c in self.cities if c.kingdom is k]
            k.population = sum(c.population for c in k.cities) * 3 + rng.randint(1, 9) * 1000
            k.language.speakers = k.population + rng.randint(10, 90) * 1000

        # Rivers: the first five share their name with a city (for the disambiguation pages).
        self.rivers: list[Entity] = []
        for i in range(24):
            k = self.kingdoms[i % 8]
            if i < 5:
                twin = self.cities[10 + i]
                n, k = twin.nm, twin.kingdom
            else:
                n = names.make()
            src = rng.choice([m for m in self.mountains if m.kingdom is k] or self.mountains)
            r = Entity("river", f"{n} River", name=n.text, kingdom=k, source=src, meaning=rng.choice(NAME_MEANINGS),
                       length=rng.randint(4, 90) * 10, basin=rng.randint(2, 120) * 100,
                       discharge=rng.randint(5, 900), mouth=None, tributaries=[], cities=[])
            src.rivers.append(r)
            self.rivers.append(r)
        for i, r in enumerate(self.rivers):
            # rivers 16.. are tributaries of earlier rivers; the rest reach a lake or sea
            if i >= 16:
                parent = self.rivers[i - 16 + (i % 3)]
                r.mouth = parent
                r.length = min(r.length, max(40, parent.length // 2))
                parent.tributaries.append(r)
            else:
                r.mouth = self.waters[i % 8]
        for i, c in enumerate(self.cities):
            if 10 <= i < 15:
                c.river = self.rivers[i - 10]
            elif i % 7 == 6:
                c.water = self.waters[i % 8]
            else:
                options = [r for r in self.rivers if r.kingdom is c.kingdom]
                c.river = options[i % len(options)] if options else self.rivers[i % 24]
            if c.river is not None:
                c.river.cities.append(c)
        for c in self.cities:
            opts = [m for m in self.mountains if m.kingdom is c.kingdom] or self.mountains
            c.mountain = opts[self.cities.index(c) % len(opts)]
            c.mountain_km = rng.randint(8, 70)
        # a map in km, kingdoms around a centre: distances between cities are stated consistently
        centres = {"north": (500, 900), "south": (500, 100), "east": (900, 500), "west": (100, 500),
                   "north-east": (800, 800), "south-west": (200, 200), "north-west": (200, 800), "south-east": (800, 200)}
        for c in self.cities:
            cx, cy = centres[c.kingdom.position]
            c.xy = (cx + rng.randint(-140, 140), cy + rng.randint(-140, 140))
        order = list(range(70))
        rng.shuffle(order)
        for a, b in zip(order[0::2], order[1::2]):
            self.cities[a].twin, self.cities[b].twin = self.cities[b], self.cities[a]

        # People
        self.people: list[Entity] = []
        surnames_for_dab = [self.cities[10 + i].nm for i in range(5)]
        for i in range(80):
            given = names.make(2, 2)
            surname = surnames_for_dab[i] if i < 5 else names.make(2, 3)
            city = self.cities[(i * 7 + 3) % 70]
            if i < 8:
                occ = "queen" if rng.random() < GIVEN_F else "king"
            else:
                occ = OCCUPATIONS[i % len(OCCUPATIONS)]
            born = rng.randint(1000, 1410)
            died = min(born + rng.randint(34, 88), 1498)  # the chronicles of the world end in 1499
            female = occ == "queen" or (occ != "king" and rng.random() < GIVEN_F)
            p = Entity("person", f"{given} {surname}", given=given.text, surname=surname.text, occupation=occ,
                       born=born, died=died, city=city, kingdom=city.kingdom, female=female,
                       death_city=self.cities[(i * 11 + 5) % 70], works=[], teacher=None,
                       parent_job=rng.choice(["weaver", "miller", "boatman", "merchant", "shepherd",
                                              "blacksmith", "scribe", "potter", "farmer", "innkeeper"]))
            self.people.append(p)
        for k, p in zip(self.kingdoms, self.people[:8]):
            # each of the first eight people founded a dynasty or rules one of the kingdoms
            p.kingdom = k
            p.city = k.capital
            p.reign = (p.born + rng.randint(18, 30), min(p.died, p.born + rng.randint(40, 60)))
            k.ruler = p
        for p in self.people:
            p.city.people.append(p)
        for p in self.people[8:]:
            elders = [q for q in self.people[8:] if q.occupation == p.occupation and q.born + 25 <= p.born]
            p.teacher = max(elders, key=lambda q: (q.born, q.title)) if elders else None
        for i, m in enumerate(self.mountains):
            explorers = [p for p in self.people if p.occupation in ("explorer", "cartographer", "general")]
            if i % 4 != 3:
                m.climber = explorers[i % len(explorers)]
                m.ascent_year = m.climber.born + rng.randint(20, 30)

        # Works and books
        self.books: list[Entity] = []
        work_nouns = ["Orchard", "Lantern", "River", "Winter", "Harbour", "Mountain", "Bell", "Mirror",
                      "Salt Road", "Heron", "Tower", "Garden", "Ferry", "Loom", "Star", "Bridge"]
        work_adjs = ["Glass", "Silent", "Long", "Red", "Hidden", "Northern", "Last", "Golden", "Broken",
                     "Seventh", "Quiet", "Burning", "Wandering", "Distant"]
        used_works: set[str] = set()
        for p in self.people:
            if p.occupation not in WORK_OCCUPATIONS:
                continue
            for _ in range(rng.randint(2, 4)):
                while True:
                    title = f"The {rng.choice(work_adjs)} {rng.choice(work_nouns)}"
                    if title not in used_works:
                        used_works.add(title)
                        break
                p.works.append((title, rng.randint(p.born + 20, p.died - 1)))
        writers = [p for p in self.people if p.occupation in ("poet", "historian", "philosopher", "explorer")]
        subtitles = ["Letters from {c}", "A Chronicle of {c}", "Songs of the {r}", "Notes on the {k}",
                     "Travels in the {k}", "A History of {c}", "Poems from {c}", "Journeys along the {r}"]
        for i in range(8):
            p = writers[i % len(writers)]
            wt, year = p.works[i // len(writers) % len(p.works)]
            fmt = subtitles[i]
            sub = fmt.format(c=p.city.title, r=(p.city.river or self.rivers[i]).title, k=p.kingdom.title)
            title = f"{wt}: {sub}" if i % 2 == 0 else wt
            book = Entity("book", title, name=title, author=p, year=year, pages=rng.randint(9, 60) * 10,
                          genre={"poet": "collection of poems", "historian": "chronicle",
                                 "philosopher": "philosophical treatise", "explorer": "travel account"}[p.occupation],
                          chapters=rng.randint(5, 14))
            # the work keeps its full title everywhere once it has an article
            p.works = [(title if w == wt else w, y) for w, y in p.works]
            self.books.append(book)

        # Animals
        self.animals: list[Entity] = []
        for i in range(30):
            n = names.make(2, 2)
            kind, cls, habitat = ANIMAL_KINDS[i % len(ANIMAL_KINDS)]
            k = self.kingdoms[(i * 3 + 1) % 8]
            place = {"river": [r for r in self.rivers if r.kingdom is k] or self.rivers,
                     "lake": [w for w in self.waters if not w.sea] or self.waters,
                     "mountain": [m for m in self.mountains if m.kingdom is k] or self.mountains,
                     "forest": [c.mountain for c in k.cities]}[habitat]
            self.animals.append(Entity("animal", n.text, name=n.text.lower(), kind=kind, cls=cls, habitat=habitat,
                                       place=place[i % len(place)], kingdom=k, colour=rng.choice(COLOURS),
                                       diet=rng.sample(DIETS, 2), length=rng.randint(3, 160),
                                       lifespan=rng.randint(2, 30), status=rng.choice(
                                           ["common", "common", "uncommon", "rare", "endangered"])))

        for k in self.kingdoms:
            mine = [a for a in self.animals if a.kingdom is k]
            k.emblem = mine[0] if mine else self.animals[self.kingdoms.index(k)]

        # Foods and festivals
        self.foods: list[Entity] = []
        for i in range(28):
            n = names.make(1, 2)
            c = self.cities[(i * 5 + 2) % 70]
            f = Entity("food", n.text, name=n.text, city=c, kingdom=c.kingdom, kind=FOOD_KINDS[i % len(FOOD_KINDS)],
                       ingredients=rng.sample(INGREDIENTS, 3), festival=None, hours=rng.randint(1, 12),
                       first=rng.randint(1100, 1450))
            c.foods.append(f)
            self.foods.append(f)
        self.festivals: list[Entity] = []
        for i in range(20):
            n = names.make(2, 2)
            c = self.cities[(i * 3 + 1) % 70]
            fest = Entity("festival", n.text, name=n.text, city=c, kingdom=c.kingdom, month=MONTHS[(i * 5) % 12],
                          celebrates=CELEBRATIONS[i % len(CELEBRATIONS)], days=rng.randint(1, 9),
                          first=rng.randint(max(c.founded, 1000), 1460), food=self.foods[(i * 3) % 28],
                          visitors=rng.randint(2, 80) * 1000)
            fest.food.festival = fest
            c.festivals.append(fest)
            self.festivals.append(fest)

        # Treaties, universities, instruments, sky and physics
        self.treaties: list[Entity] = []
        for i in range(6):
            c = self.cities[[2, 5, 17, 23, 31, 40][i]]
            a, b = c.kingdom, c.kingdom.neighbours[i % 2]
            self.treaties.append(Entity("treaty", f"Treaty of {c.title}", city=c, a=a, b=b,
                                        year=rng.randint(1150, 1480), articles=rng.randint(4, 7),
                                        kind=["peace treaty", "trade agreement", "border treaty"][i % 3]))
        self.universities: list[Entity] = []
        for i in range(8):
            c = self.cities[i * 4 + (0 if i % 2 else 1)]
            founder = self.people[8 + (i * 9) % 72]
            self.universities.append(Entity(
                "university", f"{'University' if i % 2 else 'Academy'} of {c.title}", city=c, kingdom=c.kingdom,
                founded=max(c.founded + 50, founder.born + 30), founder=founder,
                students=rng.randint(3, 60) * 100, faculties=rng.sample(
                    ["Law", "Medicine", "Astronomy", "Music", "Theology", "Mathematics", "Navigation",
                     "Architecture", "Languages", "Natural philosophy"], 4)))
        for p in self.people:
            unis = [u for u in self.universities if u.kingdom is p.kingdom]
            p.university = unis[0] if unis else None
        self.instruments: list[Entity] = []
        for i in range(8):
            n = names.make(1, 2)
            kind, part = INSTRUMENT_KINDS[i % len(INSTRUMENT_KINDS)]
            self.instruments.append(Entity("instrument", n.text, name=n.text.lower(), kind=kind, part=part,
                                           count=rng.randint(1, 9), kingdom=self.kingdoms[(i * 5) % 8],
                                           wood=rng.choice(["maple", "pear wood", "ash", "walnut", "boxwood", "cedar"])))
        astronomers = [p for p in self.people if p.occupation in ("astronomer", "mathematician")]
        sun, moon1, moon2, comet = names.make(2, 2), names.make(2, 2), names.make(2, 2), names.make(2, 3)
        self.sky = {
            "sun": Entity("sky", f"{sun} (star)", name=sun.text, star=True),
            "moon1": Entity("sky", f"{moon1} (moon)", name=moon1.text, period=rng.randint(25, 34),
                            distance=rng.randint(300, 420) * 1000, radius=rng.randint(1500, 1900)),
            "moon2": Entity("sky", f"{moon2} (moon)", name=moon2.text, period=rng.randint(70, 95),
                            distance=rng.randint(700, 900) * 1000, radius=rng.randint(400, 700)),
            "comet": Entity("sky", f"{comet}'s Comet", name=comet.text, period=rng.randint(40, 90),
                            discoverer=astronomers[0], year=astronomers[0].born + 31),
        }
        self.laws = [
            Entity("law", f"{astronomers[1].surname}'s law of orbits", person=astronomers[1],
                   year=astronomers[1].born + 40, topic="orbits"),
            Entity("law", f"{astronomers[2].surname}'s law of cooling", person=astronomers[2],
                   year=astronomers[2].born + 38, topic="cooling"),
            Entity("law", f"{astronomers[3 % len(astronomers)].surname} number",
                   person=astronomers[3 % len(astronomers)], year=astronomers[3 % len(astronomers)].born + 35,
                   topic="number"),
        ]
        unit = names.make(2, 2)
        self.unit = Entity("unit", unit.text, name=unit.text.lower(), metres=rng.randint(150, 220),
                           kingdom=self.kingdoms[0])

    # every English article subject, in a fixed order
    def subjects(self) -> list[Entity]:
        return (self.kingdoms + self.languages + self.ranges + self.mountains + self.waters
                + self.cities + self.rivers + self.people + self.books + self.animals + self.foods
                + self.festivals + self.treaties + self.universities + self.instruments
                + list(self.sky.values()) + self.laws + [self.unit])


# --------------------------------------------------------------------------------------------
# Markup helpers
# --------------------------------------------------------------------------------------------


def tpl(name: str, *args: object, **kw: object) -> str:
    """`{{name|a|b|k=v}}` on one line."""
    parts = [name] + [str(a) for a in args] + [f"{k.replace('_', '-')}={v}" for k, v in kw.items()]
    return "{{" + "|".join(parts) + "}}"


def infobox(kind: str, fields: list[tuple[str, object]]) -> str:
    """A multi-line infobox; values may hold nested templates, links, refs and `<br />`."""
    lines = ["{{Infobox " + kind]
    lines += [f"| {k} = {v}" for k, v in fields if v is not None]
    return "\n".join(lines) + "\n}}"


def conv(value: object, unit: str, to: str | None = None) -> str:
    return tpl("convert", value, unit, to) if to else tpl("convert", value, unit)


def num(n: int) -> str:
    return f"{n:,}"


def span(a: int, b: int) -> str:
    return f"{a}&ndash;{b}"


def century(year: int) -> str:
    c = year // 100 + 1
    suffix = "th" if 10 <= c % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(c % 10, "th")
    return f"{c}{suffix} century"


def slug(title: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in title.lower()).strip("_")


def article_rng(kind: str, title: str) -> random.Random:
    return random.Random(f"{SEED}:{kind}:{title}")  # str seeds hash with SHA-512: stable across runs


def article_a(word: str) -> str:
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


PUBLISHERS = ["Royal Archive of the {k}", "{c} Historical Society", "Survey Office of the {k}",
              "Geographic Society of the {k}", "Chronicle of {c}", "Guild Records of {c}"]


class Refs:
    """Citations for one article: the first use of a name defines it, later uses are `<ref name=.. />`."""

    def __init__(self, rng: random.Random, subject: str, kingdom: str, city: str):
        self.rng = rng
        self.subject = subject
        self.kingdom = kingdom
        self.city = city
        self.defined: list[str] = []

    def _publisher(self) -> str:
        return self.rng.choice(PUBLISHERS).format(k=self.kingdom, c=self.city)

    def web(self, name: str, title: str) -> str:
        if name in self.defined:
            return f'<ref name="{name}" />'
        self.defined.append(name)
        cite = tpl("cite web", url=f"http://example.org/{slug(self.subject)}/{name}", title=title,
                   publisher=self._publisher(), year=self.rng.randint(1480, 1499), access_date="1 May 2024")
        return f'<ref name="{name}">{cite}</ref>'

    def book(self, author: str, title: str, year: int, page: int) -> str:
        return "<ref>" + tpl("cite book", last=author, title=f"''{title}''", publisher=self._publisher(),
                             year=year, page=page) + "</ref>"

    def note(self, text: str) -> str:
        return f"<ref>{text}</ref>"


def pick(rng: random.Random, options: list[str], **facts: object) -> str:
    return rng.choice(options).format(**facts)


def section(title: str, body: str, level: int = 2) -> str:
    bar = "=" * level
    return f"{bar} {title} {bar}\n{body.strip()}"


def bullets(items: Iterable[str], mark: str = "*") -> str:
    return "\n".join(f"{mark} {it}" for it in items)


def wikitable(caption: str, header: list[str], rows: list[list[object]], sortable: bool = False) -> str:
    cls = "wikitable sortable" if sortable else "wikitable"
    lines = [f'{{| class="{cls}"', f"|+ {caption}", "! " + " !! ".join(header)]
    for row in rows:
        lines += ["|-", "| " + " || ".join(str(c) for c in row)]
    return "\n".join(lines + ["|}"])


def thumb(file: str, caption: str, px: int | None = None, prefix: str = "File", align: str | None = None) -> str:
    opts = ["thumb"] + ([align] if align else []) + ([f"{px}px"] if px else [])
    return f"[[{prefix}:{file}|{'|'.join(opts)}|{caption}]]"


def trailer(rng: random.Random, subject: Entity, see_also: list[Entity], links: list[tuple[str, str]],
            categories: list[str], interlang: list[tuple[str, str]], refs_heading: str = "References",
            further: list[str] | None = None, notes: str | None = None) -> str:
    """The closing sections every article has: See also, Notes, References, External links, ..."""
    parts = []
    if see_also:
        parts.append(section("See also", bullets(e.link() for e in see_also)))
    if notes:
        parts.append(section("Notes", notes))
    parts.append(section(refs_heading, tpl("reflist") if rng.random() < 0.7 else "<references />"))
    if further:
        parts.append(section(rng.choice(["Further reading", "Bibliography"]), bullets(further)))
    if links:
        parts.append(section("External links", bullets(f"[{url} {label}]" for url, label in links)))
    tail = "\n".join(f"[[Category:{c}]]" for c in categories)
    if interlang:
        tail += "\n\n" + "\n".join(f"[[{code}:{t}]]" for code, t in interlang)
    parts.append(tail)
    return "\n\n".join(parts)


def and_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def join_paras(*paras: str) -> str:
    return "\n\n".join(p.strip() for p in paras if p and p.strip())


# --------------------------------------------------------------------------------------------
# Articles about places
# --------------------------------------------------------------------------------------------

DISTRICTS = ["Old Town", "Tanners' Quarter", "Harbour Quarter", "Upper Town", "Millgate", "Saltside",
             "Bellhill", "Weavers' Row", "New Market", "Castle Hill", "Ropewalk", "Lantern Lane",
             "Fishers' Strand", "Orchard Ward", "Glassworks", "Bridgefoot", "Chapel Green", "Stonefield"]
LANDMARKS = ["Bridge", "Tower", "Gate", "Market Hall", "Cathedral", "Lighthouse", "Fountain", "Library",
             "Citadel", "Granary", "Bathhouse", "Observatory", "Clock Tower", "Guildhall"]
LANDMARK_ADJ = ["Old", "Great", "Salt", "Red", "White", "Queen's", "Weavers'", "Lantern", "River",
                "High", "North", "Copper"]

CITY_EVENTS = [
    "In {y}, a great flood of the {water} destroyed much of the lower town.",
    "A fire in {y} burned more than {n} houses around the market square.",
    "The city was besieged by the army of the {enemy} in {y}, but its walls held for {d} weeks.",
    "In {y} the crown granted {city} a charter of free trade, and its fairs grew quickly.",
    "The stone bridge over the {water} was completed in {y} after {d} years of work.",
    "An outbreak of marsh fever in {y} killed nearly a third of the inhabitants.",
    "In {y} the walls were extended to enclose the {district} district.",
    "A guild of {i0} workers was founded in {y} and soon controlled the trade.",
    "The {landmark} was finished in {y} and became the symbol of the city.",
    "In {y} {city} sent {d} ships and {n} soldiers to the war against the {enemy}.",
    "A new road to {other} was paved in {y}, halving the journey between the two cities.",
    "In {y} an earthquake damaged the {landmark}, which was rebuilt within a decade.",
    "The first printing press in {city} was set up in {y} by a family of paper makers.",
    "In {y} the town council bought the {district} from the church for {n} silver marks.",
]
CITY_GEO = [
    "{city} lies at an elevation of {elev} in the {position} of the {kingdom}.",
    "The city stands {elev} above sea level, in the {position} of the {kingdom}.",
    "Built at an elevation of {elev}, {city} occupies a terrace in the {position} of the {kingdom}.",
]
CITY_MOUNTAIN = [
    "[[{mountain}]] rises about {km} to the north and can be seen from most of the old town.",
    "The peak of [[{mountain}]], {km} away, dominates the view from the city walls.",
    "On clear days [[{mountain}]], some {km} distant, is visible from the market square.",
    "The nearest high mountain is [[{mountain}]], which lies {km} from the city centre.",
]
CITY_ECONOMY = [
    "The economy of {city} rests on {i0}, {i1} and {i2}.",
    "For centuries the wealth of {city} came from {i0}; today {i1} and {i2} are almost as important.",
    "{city} is known across the {kingdom} for its {i0}, and the town also lives from {i1} and {i2}.",
    "The main trades of the city are {i0} and {i1}, followed by {i2}.",
]
ECONOMY_EXTRA = [
    "A weekly market is held every {day} in the {district} district.",
    "Merchants pay their dues in the {currency}, the coin of the {kingdom}.",
    "The guild of {i0} workers owns the largest hall in the city.",
    "Barges carry goods from the city down the {water} to the coast.",
    "Most workshops are found in the {district} district, close to the water.",
    "Caravans from [[{other}]] arrive every autumn to trade with its {i1} workshops.",
    "About {pct} per cent of the inhabitants work in {i0}.",
    "The toll on the {landmark} was for a long time the largest source of income of the town.",
]
CLIMATE = ["The climate is mild and wet, with cool summers and long autumns.",
           "Winters are cold and snowy; summers are short and warm.",
           "The city has a dry climate, with most rain falling in spring.",
           "Fog from the {water} covers the lower town on many winter mornings."]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


LANDMARK_DESC = [
    "It is built of {rock} brought down from [[{mountain}]].",
    "Its walls are decorated with carvings of {animal}s and river boats.",
    "A stair of {n} steps leads to the top, from where the whole valley can be seen.",
    "The roof was covered with copper in {y2}, and it has turned green since.",
    "Its great bell, cast in the city, weighs about {t} tonnes.",
    "The building was badly damaged by fire in {y2} and restored over the following years.",
    "Inside, a painted ceiling shows the founding of the city.",
    "It was paid for by the guild of {i0} workers, whose sign is carved above the door.",
    "Its clock strikes every hour and plays a short tune at noon.",
    "Legend says that a {animal} nested on it on the day it was finished.",
    "The stones of its lower walls are older than the city itself.",
    "Its courtyard holds a well that never ran dry, even in the drought of {y2}.",
]
LANDMARK_TODAY = [
    "Today it houses a small museum of local history.",
    "It is still used for markets and public meetings.",
    "The building is open to visitors on feast days.",
    "It now serves as the meeting hall of the town council.",
    "Concerts are held there during the summer.",
    "It is the most photographed building in the {kingdom}.",
    "The guilds still hold their annual dinner in its great room.",
    "Part of it is used as a school for the children of the {district} district.",
]
DISTRICT_DESC = [
    "the oldest part of the city, with narrow streets and timber houses",
    "a quarter of workshops and warehouses close to the water",
    "a residential district built on the slope above the market",
    "the home of the craft guilds and their halls",
    "a district of gardens, orchards and large family houses",
    "the area around the main square, with the town hall and the chief church",
    "a poorer quarter that grew up outside the old walls",
    "a district of inns and stables on the road out of town",
    "the quarter of boatmen and fishers along the shore",
    "the newest district, laid out on a regular plan",
]
LEISURE = [
    "Boat races on the {water} are held every summer between the districts.",
    "The city's wrestling school has produced {n} royal champions.",
    "Archery contests take place on the meadow outside the {district} gate.",
    "A game played with a leather ball and long sticks is popular with the young.",
    "Townspeople walk in the gardens along the old walls on summer evenings.",
    "Hunting in the hills near [[{mountain}]] is a favourite pastime of the old families.",
    "The inns of the {district} district are known for their music and card games.",
    "Horse races are run on the road to [[{other}]] each spring.",
]
FAITHS = ["the Lantern faith", "the Old Rite", "the Way of the River", "the Church of the Two Moons"]
GOVERNMENT_CITY = [
    "The city is governed by a council of {n} members, elected every {y} years by the guilds.",
    "A mayor chosen by the crown governs the city together with a council of {n} elders.",
    "The town council has {n} seats; half are held by the merchant guilds and half by the old families.",
    "Local affairs are run by an elected council of {n}, which meets weekly in the {landmark}.",
]
ARMS = [
    "The coat of arms shows a {colour} {emblem} on a field of blue.",
    "Its coat of arms bears a {emblem} holding a key, on a {colour} shield.",
    "The arms of the city show a {colour} tower above wavy lines for the river.",
    "The city's arms are a golden {emblem} on a {colour} field.",
]
TRANSPORT = [
    "The royal road from [[{a}]] to [[{b}]] passes through the city.",
    "Carts and coaches leave the {district} district every morning for the towns of the interior.",
    "Mountain passes to the north are closed for part of the winter.",
    "Goods are carried on pack horses on the steep roads of the region.",
]


def city_water(c: Entity) -> Entity:
    return c.river if c.river is not None else c.water


def city_lead(c: Entity) -> str:
    """The first sentences, shared by the city article and the facts other articles repeat."""
    k = c.kingdom
    place = f"on the [[{c.river.title}]]" if c.river is not None else f"on the shore of [[{c.water.title}]]"
    kind = "city" if c.population >= 20000 else "town"
    s = f"'''{c.title}''' is {article_a(kind)} in the [[{k.title}]], {place}."
    if c.capital:
        s += f" It is the capital of the kingdom and its largest city."
    return s


def city_article(w: World, c: Entity) -> str:
    rng = article_rng("city", c.title)
    k = c.kingdom
    water = city_water(c)
    refs = Refs(rng, c.title, k.title, c.title)
    lang = k.language
    districts = rng.sample(DISTRICTS, 4)
    landmarks = [f"{a} {t}" for a, t in zip(rng.sample(LANDMARK_ADJ, 3), rng.sample(LANDMARKS, 3))]
    others = [o for o in k.cities if o is not c]
    other = others[rng.randrange(len(others))]
    enemy = k.neighbours[rng.randrange(2)]
    facts = dict(city=c.title, kingdom=k.title, water=water.title, enemy=enemy.title, other=other.title,
                 mountain=c.mountain.title, km=conv(c.mountain_km, "km"), elev=conv(c.elevation, "m", "ft"),
                 position=k.position, currency=k.currency, district=districts[0], landmark=landmarks[0],
                 i0=c.industries[0], i1=c.industries[1], i2=c.industries[2], day=rng.choice(WEEKDAYS),
                 pct=rng.randint(10, 45))
    parts = []
    if rng.random() < 0.25:
        parts.append("__NOTOC__")
    ibox = infobox("settlement", [
        ("name", c.title),
        ("native_name", tpl("lang", lang.code, c.native)),
        ("settlement_type", "City" if c.population >= 20000 else "Town"),
        ("image_skyline", f"{c.title} skyline.jpg"),
        ("image_caption", f"The {districts[0]} of {c.title}<br />seen from the {landmarks[0]}"),
        ("subdivision_type", "Kingdom"),
        ("subdivision_name", k.link()),
        ("established_title", "Founded"),
        ("established_date", c.founded),
        ("area_total_km2", c.area),
        ("elevation_m", c.elevation),
        ("elevation_footnotes", refs.web("survey", f"Heights of the towns of the {k.title}")),
        ("population_total", "{{formatnum:" + str(c.population) + "}}"),
        ("population_as_of", f"{c.census} census"),
        ("river" if c.river is not None else "lake", water.link()),
        ("coordinates", tpl("coord", rng.randint(30, 60), rng.randint(0, 59), "N", rng.randint(1, 30),
                            rng.randint(0, 59), "E", display="inline,title")),
        ("website", tpl("URL", f"example.org/{slug(c.title)}")),
    ])
    parts.append(ibox)
    pop_sentence = pick(rng, [
        "It has a population of {pop}{ref}.",
        "At the census of {census} it had {pop} inhabitants{ref}.",
        "Its population was {pop} at the {census} census{ref}.",
    ], pop=num(c.population), census=c.census, ref=refs.web("census", f"Census of the {k.title}, {c.census}"))
    lead = [city_lead(c), pop_sentence, f"The city was founded in {c.founded}."]
    if rng.random() < 0.5:
        lead.append(f"In the [[{lang.title}]] it is called {tpl('lang', lang.code, c.native)}, "
                    f"which means \"{c.meaning}\".")
    lead.append(pick(rng, [
        "It is known for its {i0}.",
        "It is best known for {i0} and for the {landmark}.",
        "The town is famous for its {i0} and its {landmark}.",
    ], **facts))
    parts.append(" ".join(lead))
    if rng.random() < 0.5:
        parts.append(f"<!-- Population figure from the {c.census} census; please do not update without a source. -->")

    # History
    years = sorted(rng.sample(range(c.founded + 5, 1499), 5))
    events = rng.sample(CITY_EVENTS, 5)
    hist_facts = dict(facts, n=rng.randint(2, 9) * 100, d=rng.randint(3, 14))
    founding = pick(rng, [
        "According to the chronicles, {city} was founded in {founded} by settlers from the {position} of the {kingdom}.",
        "{city} was founded in {founded} as a fortified market on the {water}.",
        "The first settlement on the site of {city} dates from {founded}, when a ford across the {water} was guarded by a wooden tower.",
        "Tradition holds that {city} was founded in {founded} by a group of {i0} families.",
    ], founded=c.founded, **facts)
    later = " ".join(events[i].format(y=years[i], **hist_facts) for i in range(1, 5))
    history = section("History", join_paras(
        section("Founding", founding + " " + events[0].format(y=years[0], **hist_facts) +
                refs.web("chronicle", f"A chronicle of {c.title}"), 3),
        section("Later history", later, 3)))
    if c.capital:
        history += ("\n\n" + f"{c.title} became the capital of the {k.link()} when the kingdom was founded in "
                    f"{k.founded}. The palace of {k.ruler.link()} stands in the {districts[1]} district.")
    parts.append(history)

    # Geography
    geo = [pick(rng, CITY_GEO, **facts), pick(rng, CITY_MOUNTAIN, **facts)]
    if c.river is not None:
        geo.append(f"The [[{c.river.title}]] flows through the city; it is {conv(c.river.length, 'km', 'mi')} "
                   f"long and rises on [[{c.river.source.title}]].")
    else:
        geo.append(f"The town lies on the shore of [[{c.water.title}]], which is {conv(c.water.depth, 'm', 'ft')} deep.")
    geo.append(f"The city covers an area of {c.area}{NBSP}km<sup>2</sup> and is divided into the "
               f"{', '.join(districts[:3])} and {districts[3]} districts.")
    seasons = []
    base = 24 - c.elevation // 150
    for s_i, season in enumerate(["Spring", "Summer", "Autumn", "Winter"]):
        hi = base + [0, 8, -1, -10][s_i] + rng.randint(-2, 2)
        lo = hi - rng.randint(6, 11)
        rain = rng.randint(20, 140)
        seasons.append([season, f"{hi}&nbsp;°C", f"{lo}&nbsp;°C", f"{rain}&nbsp;mm"])
    climate = section("Climate", pick(rng, CLIMATE, **facts) + "\n\n" +
                      wikitable(f"Climate of {c.title}", ["Season", "Mean high", "Mean low", "Rainfall"],
                                seasons), 3)
    parts.append(section("Geography", join_paras(
        thumb(f"{c.title} river view.jpg", f"The [[{water.title}]] at {c.title}", 220,
              prefix=rng.choice(["File", "Image"])),
        " ".join(geo), climate)))

    # Economy
    extra = rng.sample(ECONOMY_EXTRA, 3)
    parts.append(section("Economy", pick(rng, CITY_ECONOMY, **facts) + " " +
                         " ".join(e.format(**facts) for e in extra)))

    # Culture
    culture = []
    culture.append(pick(rng, [
        "The {landmark} and the {l1} are the best known buildings of {city}.",
        "Visitors come to {city} to see the {landmark}, the {l1} and the {l2}.",
        "Among the sights of the city are the {landmark} and the {l1}.",
    ], l1=landmarks[1], l2=landmarks[2], **facts))
    sub = []
    if c.foods:
        sub.append(section("Cuisine", " ".join(
            f"[[{f.title}]] is {article_a(f.kind)} made from {f.ingredients[0]} and {f.ingredients[1]}."
            for f in c.foods) + f" The local dishes are described in the food guide of the {k.title}.", 3))
    if c.festivals:
        fests = []
        for f in c.festivals:
            fests.append(section(f.title, f"[[{f.title}]] is held every {f.month} to celebrate {f.celebrates}. "
                                          f"It lasts {f.days} day{'s' if f.days > 1 else ''} and draws about "
                                          f"{num(f.visitors)} visitors.", 4))
        sub.append(section("Festivals", "Several festivals take place in the city each year.\n\n" +
                           "\n\n".join(fests), 3))
    parts.append(section("Culture", join_paras(" ".join(culture), *sub)))

    parts += city_extra_sections(w, c, rng, facts, districts, landmarks, refs)
    if c.people:
        people = sorted(c.people, key=lambda p: (p.born, p.title))
        parts.append(section("Notable people", bullets(
            f"{p.link()} ({span(p.born, p.died)}), {p.occupation}" for p in people)))
    unis = [u for u in w.universities if u.city is c]
    if unis:
        u = unis[0]
        parts.append(section("Education", f"The [[{u.title}]] was founded in {u.founded} by "
                                          f"{u.founder.link()}. It has about {num(u.students)} students."))
    see_also = [k] + ([c.river] if c.river is not None else [c.water]) + [c.mountain]
    further = [f"{rng.choice(['Vell', 'Orrin', 'Tamsa', 'Kel'])}, A. (1490). ''A description of {c.title}''. "
               f"{k.title} Press."] if rng.random() < 0.4 else None
    interlang = [("de", c.title), ("fr", c.title)] if rng.random() < 0.6 else [("el", c.nm.greek)]
    parts.append(trailer(rng, c, see_also, [(f"http://example.org/{slug(c.title)}", f"Official site of {c.title}")],
                         [f"Cities in the {k.title}"] + ([f"Populated places on the {c.river.title}"] if c.river else [])
                         + (["Capitals"] if c.capital else []),
                         interlang, further=further))
    return "\n\n".join(parts) + "\n"


def distance_km(a: Entity, b: Entity) -> int:
    d = ((a.xy[0] - b.xy[0]) ** 2 + (a.xy[1] - b.xy[1]) ** 2) ** 0.5
    return max(5, int(round(d / 5.0)) * 5)


def city_extra_sections(w: World, c: Entity, rng: random.Random, facts: dict, districts: list[str],
                        landmarks: list[str], refs: Refs) -> list[str]:
    """Landmarks, districts, demographics, government, transport and twin town of a city."""
    k = c.kingdom
    architects = [p for p in w.people if p.occupation == "architect" and p.kingdom is k] or \
        [p for p in w.people if p.occupation == "architect"]
    out = []
    lm = []
    for i, name in enumerate(landmarks):
        y = rng.randint(min(c.founded + 20, 1480), 1490)
        s = f"The {name} was built in {y}"
        arch = architects[(i + len(c.title)) % len(architects)]
        if i == 0 and arch.born + 25 <= y <= arch.died:
            s += f" to plans by the architect {arch.link()}"
        s += ". " + " ".join(d.format(**dict(facts, rock=c.mountain.rock, animal=k.emblem.name,
                                             n=rng.randint(90, 400), y2=rng.randint(y + 1, 1499), t=rng.randint(2, 14)))
                             for d in rng.sample(LANDMARK_DESC, 2))
        s += " " + pick(rng, LANDMARK_TODAY, **facts)
        lm.append(section(name, s, 3))
    out.append(section("Landmarks", join_paras(
        thumb(f"{c.title} {landmarks[0].lower()}.jpg", f"The {landmarks[0]}, with [[{c.mountain.title}]] behind", 250), *lm)))
    descs = rng.sample(DISTRICT_DESC, 4)
    out.append(section("Districts", f"{c.title} has four districts:\n" +
                       "\n".join(f"; {d}\n: {desc.capitalize()}." for d, desc in zip(districts, descs))))
    # population history ends at the census figure given in the lead and the infobox
    years = [c.census - 150, c.census - 100, c.census - 50, c.census]
    pops = [c.population]
    for _ in range(3):
        pops.append(int(pops[-1] / rng.uniform(1.1, 1.6)) // 100 * 100)
    pops.reverse()
    rows = [[y, num(p)] for y, p in zip(years, pops) if y > c.founded]
    faith = FAITHS[(len(c.title) + c.founded) % len(FAITHS)]
    other_lang = k.neighbours[0].language
    demo = (f"Most inhabitants speak the [[{k.language.title}]]; a minority, mostly traders, speak the "
            f"[[{other_lang.title}]]. " + pick(rng, [
                "The majority follow {faith}.", "Most people belong to {faith}, whose chief temple stands in the {d}.",
                "{Faith} is the main religion of the city."], faith=faith, Faith=faith[0].upper() + faith[1:], d=districts[0]))
    out.append(section("Demographics", demo + "\n\n" + wikitable(f"Population of {c.title}", ["Year", "Population"], rows)))
    gov = pick(rng, GOVERNMENT_CITY, n=rng.randint(7, 31), y=rng.randint(2, 6), **facts)
    gov += " " + pick(rng, ARMS, colour=rng.choice(["red", "green", "black", "silver", "gold"]), emblem=k.emblem.name)
    out.append(section("Government", gov))
    near = sorted((o for o in w.cities if o is not c), key=lambda o: (distance_km(c, o), o.title))[:3]
    trans = "The nearest towns are " + and_list([f"[[{o.title}]] ({conv(distance_km(c, o), 'km', 'mi')})" for o in near]) + "."
    if c.river is not None:
        trans += f" Boats on the [[{c.river.title}]] connect the city with the other river towns."
    trans += " " + pick(rng, TRANSPORT, a=near[0].title, b=near[1].title, **facts)
    out.append(section("Transport", trans))
    leisure = " ".join(e.format(**dict(facts, animal=k.emblem.name, n=rng.randint(2, 9)))
                       for e in rng.sample(LEISURE, 2))
    out.append(section("Sport and leisure", leisure))
    t = c.twin
    out.append(section("Twin towns", f"{c.title} is twinned with [[{t.title}]] in the [[{t.kingdom.title}]]"
                                     + (" since " + str(max(c.founded, t.founded) + 100) if rng.random() < 0.7 else "") + "."))
    return out


RIVER_HISTORY = [
    "The river was an important trade route in the {cent}, when barges carried {cargo} downstream.",
    "A series of locks was built on the lower {river} in {y}.",
    "In {y} the {river} froze over for six weeks, and fairs were held on the ice.",
    "The great flood of {y} changed the course of the river near its mouth.",
    "Ferrymen on the {river} formed a guild in {y}.",
    "The {river} marked the border between two rival lords until {y}.",
]


def river_article(w: World, r: Entity) -> str:
    rng = article_rng("river", r.title)
    k = r.kingdom
    refs = Refs(rng, r.title, k.title, r.cities[0].title if r.cities else r.source.title)
    mouth = r.mouth
    mouth_word = "joins the" if mouth.etype == "river" else "flows into"
    parts = [infobox("river", [
        ("name", r.title),
        ("image", f"{r.title}.jpg"),
        ("country", k.link()),
        ("source", r.source.link()),
        ("source_elevation", conv(r.source.height - rng.randint(100, 600), "m", "ft")),
        ("mouth", mouth.link()),
        ("length", conv(r.length, "km", "mi") + refs.web("length", f"Rivers of the {k.title}")),
        ("basin_size", f"{num(r.basin)}&nbsp;km<sup>2</sup>"),
        ("discharge", f"{r.discharge} m<sup>3</sup>/s"),
        ("tributaries_left", ", ".join(t.link() for t in r.tributaries[:1]) or None),
        ("tributaries_right", ", ".join(t.link() for t in r.tributaries[1:]) or None),
    ])]
    lead = (f"'''{r.title}''' is a river in the [[{k.title}]]. It rises on [[{r.source.title}]] and "
            f"{mouth_word} [[{mouth.title}]] after {conv(r.length, 'km', 'mi')}.")
    if r.cities:
        lead += f" The largest city on its banks is [[{max(r.cities, key=lambda c: (c.population, c.title)).title}]]."
    lead += " " + pick(rng, ["Its basin covers {b}&nbsp;km<sup>2</sup>.",
                             "The river drains a basin of about {b} square kilometres.",
                             "Its drainage basin is about {b}{nb}km<sup>2</sup>."], b=num(r.basin), nb=NBSP)
    parts.append(lead)
    course = [f"The {r.title} rises at an elevation of about {conv(r.source.height - 300, 'm')} on the slopes of "
              f"[[{r.source.title}]], in the [[{r.source.range.title}]]."]
    course.append(pick(rng, ["It first flows {d1} through narrow valleys, then turns {d2} into open farmland.",
                             "From its source it runs {d1} for some distance before bending {d2}.",
                             "The upper course runs {d1}; below the gorges the river turns {d2}."],
                       d1=rng.choice(["north", "south", "east", "west"]),
                       d2=rng.choice(["north-east", "south-west", "south-east", "north-west"])))
    if r.cities:
        course.append("The towns along the river, from source to mouth, are:\n" +
                      bullets((c.link() + f" (population {num(c.population)})" for c in r.cities), "#"))
    course_body = " ".join(course[:2]) + ("\n\n" + course[2] if len(course) > 2 else "")
    parts.append(section("Course", course_body))
    if r.tributaries:
        items = []
        for t in r.tributaries:
            items.append(f"* {t.link()} ({conv(t.length, 'km')})")
            for tt in t.tributaries:
                items.append(f"** {tt.link()} ({conv(tt.length, 'km')})")
        parts.append(section("Tributaries", f"The main tributaries of the {r.title} are:\n" + "\n".join(items)))
    bridges = []
    for c in r.cities[:4]:
        bridges.append([f"{rng.choice(LANDMARK_ADJ)} Bridge", c.link(), rng.randint(max(c.founded, 1100), 1490),
                        rng.choice(["stone", "timber", "stone and timber"])])
    if bridges:
        parts.append(section("Bridges", wikitable(f"Bridges over the {r.title}",
                                                  ["Bridge", "Town", "Built", "Material"], bridges)))
    animals = [a for a in w.animals if a.place is r]
    eco = pick(rng, ["The waters of the {river} are rich in fish.", "The river supports a varied wildlife.",
                     "Reed beds line much of the lower river."], river=r.title)
    if animals:
        eco += " " + " ".join(f"The [[{a.title}|{a.name}]] is {article_a(a.kind)} found along the river." for a in animals)
    parts.append(section("Ecology", eco))
    hist = " ".join(e.format(river=r.title, y=rng.randint(1150, 1490), cent=century(rng.randint(1100, 1450)),
                             cargo=rng.choice(["salt", "timber", "grain", "wool", "copper"]))
                    for e in rng.sample(RIVER_HISTORY, 3))
    parts.append(section("History", hist + refs.web("length", "")))
    parts += river_extra(w, r, rng)
    parts.append(trailer(rng, r, [k, r.source] + ([mouth] if mouth.etype == "water" else []), [],
                         [f"Rivers of the {k.title}"], [("de", r.title.replace(" River", " (Fluss)"))]))
    return "\n\n".join(parts) + "\n"


ROUTES = ["North Ridge", "South Face", "East Couloir", "Shepherds' Path", "Glacier Route", "West Buttress"]


def mountain_article(w: World, m: Entity) -> str:
    rng = article_rng("mountain", m.title)
    k = m.kingdom
    refs = Refs(rng, m.title, k.title, k.capital.title)
    parts = [infobox("mountain", [
        ("name", m.title),
        ("photo", f"{m.name} from the valley.jpg"),
        ("elevation_m", m.height),
        ("elevation_ref", refs.web("survey", f"Heights of the mountains of the {k.title}")),
        ("prominence_m", m.prominence),
        ("range", m.range.link()),
        ("location", k.link()),
        ("first_ascent", f"{m.ascent_year} by {m.climber.link()}" if m.climber else "unknown"),
        ("easiest_route", rng.choice(["hike", "scramble", "rock climb", "glacier walk"])),
    ])]
    highest = m.range.highest is m
    lead = (f"'''{m.title}''' is a mountain in the [[{m.range.title}]] of the [[{k.title}]]. "
            f"It is {conv(m.height, 'm', 'ft')} high.")
    if highest:
        lead += " It is the highest peak of the range."
    lead += " " + pick(rng, ["The mountain is made mostly of {rock}.", "Its summit is formed of {rock}.",
                             "Most of the mountain consists of {rock}."], rock=m.rock)
    parts.append(lead)
    parts.append(section("Geology", pick(rng, [
        "The {rock} of {m} formed deep under an ancient sea and was later pushed up.",
        "Geologists divide the mountain into an older {rock} core and younger slopes of scree.",
        "The {rock} of the summit is cut by deep gullies that hold snow until midsummer.",
    ], rock=m.rock, m=m.title) + " " + pick(rng, [
        "Its prominence is {p}.", "It rises {p} above the nearest saddle.",
        "The mountain has a topographic prominence of {p}."], p=conv(m.prominence, "m", "ft"))))
    climb = []
    if m.climber:
        climb.append(f"The first recorded ascent was made in {m.ascent_year} by {m.climber.link()}, "
                     f"{article_a(m.climber.occupation)} from [[{m.climber.city.title}]]{refs.web('ascent', 'First ascents')}.")
    else:
        climb.append("The date of the first ascent is unknown; shepherds probably reached the summit long before any record.")
    routes = rng.sample(ROUTES, 3)
    dl = "\n".join(f"; {rt}\n: {rng.choice(['An easy walk of', 'A steep climb of', 'A long route of', 'A scramble of'])} "
                   f"about {rng.randint(3, 12)} hours from the {rng.choice(['valley', 'village', 'pass', 'lake'])}."
                   for rt in routes)
    parts.append(section("Climbing", " ".join(climb) + "\n\n" + section("Routes", dl, 3)))
    if m.rivers:
        parts.append(section("Rivers", "The following rivers rise on the mountain:\n" +
                             bullets(f"{r.link()}, {conv(r.length, 'km')} long" for r in m.rivers)))
    animals = [a for a in w.animals if a.place is m]
    if animals:
        parts.append(section("Wildlife", " ".join(
            f"The [[{a.title}|{a.name}]] is {article_a(a.kind)} that lives on its slopes." for a in animals)))
    parts += mountain_extra(w, m, rng)
    parts.append(trailer(rng, m, [m.range, k], [], [f"Mountains of the {k.title}", f"{m.range.title}"], []))
    return "\n\n".join(parts) + "\n"


def range_article(w: World, rg: Entity) -> str:
    rng = article_rng("range", rg.title)
    ks = rg.kingdoms
    refs = Refs(rng, rg.title, ks[0].title, ks[0].capital.title)
    where = " and the ".join(f"[[{k.title}]]" for k in ks)
    hi = rg.highest
    parts = [infobox("mountain range", [("name", rg.title), ("highest", hi.link()),
                                        ("elevation_m", hi.height), ("length_km", rg.length),
                                        ("country", ", ".join(k.link() for k in ks))])]
    parts.append(f"'''{rg.title}''' is a mountain range in the {where}. It is about {conv(rg.length, 'km', 'mi')} "
                 f"long. Its highest peak is [[{hi.title}]], at {conv(hi.height, 'm', 'ft')}.")
    rows = [[p.link(), conv(p.height, "m"), p.kingdom.link(), p.ascent_year or "&ndash;"]
            for p in sorted(rg.peaks, key=lambda p: (-p.height, p.title))]
    parts.append(section("Peaks", "The main peaks are listed below" + refs.web("peaks", "Peaks of the range") + ".\n\n" +
                         wikitable(f"Peaks of the {rg.title}", ["Peak", "Height", "Kingdom", "First ascent"], rows, True)))
    parts.append(section("Geography", pick(rng, [
        "The range forms a long barrier between the lowlands and the high plateau.",
        "Deep valleys divide the range into several groups of peaks.",
        "Passes across the range are closed by snow for five months of the year."]) + " " +
        "Rivers that rise in the range include " + and_list([r.link() for p in rg.peaks for r in p.rivers[:1]]) + "."))
    parts.append(trailer(rng, rg, ks, [], ["Mountain ranges"], []))
    return "\n\n".join(parts) + "\n"


def water_article(w: World, wa: Entity) -> str:
    rng = article_rng("water", wa.title)
    k = wa.kingdom
    kind = "sea" if wa.sea else "lake"
    inflows = [r for r in w.rivers if r.mouth is wa]
    shore = [c for c in w.cities if c.water is wa]
    refs = Refs(rng, wa.title, k.title, k.capital.title)
    parts = [infobox("body of water", [("name", wa.title), ("type", kind.capitalize()),
                                       ("area", f"{num(wa.area)}&nbsp;km<sup>2</sup>"),
                                       ("max-depth", conv(wa.depth, "m", "ft")),
                                       ("inflow", ", ".join(r.link() for r in inflows) or None),
                                       ("countries", k.link())])]
    parts.append(f"'''{wa.title}''' is {article_a(kind)} on the {k.position} side of the [[{k.title}]]. "
                 f"It covers {num(wa.area)}{NBSP}km<sup>2</sup> and is up to {conv(wa.depth, 'm', 'ft')} deep"
                 f"{refs.web('depth', 'Soundings')}.")
    body = []
    if inflows:
        body.append("Rivers flowing into it include " + and_list([r.link() for r in inflows]) + ".")
    if shore:
        body.append("Towns on its shore include " + and_list([c.link() for c in shore]) + ".")
    body.append(pick(rng, ["Storms on the {k} are sudden and dangerous in autumn.",
                           "The water is clear and cold, even in summer.",
                           "Fishing fleets work the {k} from spring to autumn."], k=kind))
    parts.append(section("Geography", " ".join(body)))
    animals = [a for a in w.animals if a.place is wa]
    if animals:
        parts.append(section("Wildlife", " ".join(f"The [[{a.title}|{a.name}]] is {article_a(a.kind)} found here."
                                                  for a in animals)))
    parts.append(trailer(rng, wa, [k], [], [("Seas" if wa.sea else "Lakes") + f" of {w.continent}"], []))
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# Kingdoms, languages, people, books
# --------------------------------------------------------------------------------------------

GOVERNMENT = [
    "The {k} is a hereditary monarchy. The ruler governs with a council of {lords} lords, which meets in [[{cap}]].",
    "Power in the {k} is shared between the crown and an assembly of the towns, which meets every spring in [[{cap}]].",
    "The {k} is ruled by a monarch chosen by the great families from among the royal house; the court sits in [[{cap}]].",
]
KINGDOM_HISTORY = [
    "In {y} the {k} fought a short war with the {n}, which ended with the loss of two border towns.",
    "A long drought between {y} and {y2} led to famine and to a revolt of the northern lords.",
    "The kingdom adopted a written law code in {y}.",
    "In {y} the crown moved the royal mint to [[{cap}]].",
    "Trade with the {n} grew after a road over the mountains was opened in {y}.",
    "The plague of {y} reduced the population of the kingdom by a fifth.",
    "In {y} the royal navy was founded, with {s} ships.",
]


def kingdom_lead(w: World, k: Entity) -> str:
    return (f"'''{k.title}''' is a kingdom in the {k.position} of [[{w.continent}]]. "
            f"Its capital is [[{k.capital.title}]] and its official language is [[{k.language.title}|{k.language.name}]].")


def kingdom_article(w: World, k: Entity) -> str:
    rng = article_rng("kingdom", k.title)
    refs = Refs(rng, k.title, k.title, k.capital.title)
    cap = k.capital
    ruler = k.ruler
    parts = [infobox("country", [
        ("conventional_long_name", k.title),
        ("native_name", tpl("lang", k.language.code, f"{k.name}{k.language.suffix} Kathar")),
        ("common_name", k.name),
        ("image_flag", f"Flag of {k.name}.svg"),
        ("capital", cap.link()),
        ("largest_city", cap.link()),
        ("official_languages", k.language.link(k.language.name)),
        ("government_type", "Monarchy"),
        ("leader_title1", "Queen" if ruler.female else "King"),
        ("leader_name1", ruler.link()),
        ("established_event1", "Founded"),
        ("established_date1", k.founded),
        ("area_km2", num(k.area)),
        ("population_estimate", num(k.population) + refs.web("census", f"Census of the {k.title}")),
        ("currency", f"{k.currency}"),
    ])]
    lead = kingdom_lead(w, k) + " " + pick(rng, [
        "The kingdom was founded in {f}.", "It was founded in {f}.", "The kingdom dates from {f}."], f=k.founded)
    lead += f" It has a population of about {num(k.population)} and covers {num(k.area)}{NBSP}km<sup>2</sup>."
    lead += f" The kingdom borders the [[{k.neighbours[0].title}]] and the [[{k.neighbours[1].title}]]."
    parts.append(lead)
    yrs = sorted(rng.sample(range(k.founded + 20, 1490), 4))
    ev = rng.sample(KINGDOM_HISTORY, 4)
    facts = dict(k=k.title, n=k.neighbours[rng.randrange(2)].title, cap=cap.title, s=rng.randint(8, 60))
    hist = " ".join(e.format(y=yrs[i], y2=yrs[i] + rng.randint(2, 6), **facts) for i, e in enumerate(ev))
    treaties = [t for t in w.treaties if t.a is k or t.b is k]
    if treaties:
        hist += "\n\n" + " ".join(f"The [[{t.title}]] of {t.year} was signed with the "
                                  f"[[{(t.b if t.a is k else t.a).title}]]." for t in treaties)
    parts.append(section("History", f"The {k.title} was founded in {k.founded}{refs.web('founding', 'Founding of the kingdom')}. "
                                    + hist))
    rulers = [[rng.choice(["Arn", "Velt", "Sora", "Imre", "Tamsin", "Oreg"]) + " " + rng.choice(["I", "II", "III"]),
               span(k.founded + 10 * i, k.founded + 10 * i + rng.randint(5, 9)), "&ndash;"] for i in range(2)]
    rulers.append([ruler.link(), span(*ruler.reign), f"born in [[{ruler.city.title}]] in {ruler.born}"])
    parts.append(section("Government", pick(rng, GOVERNMENT, lords=rng.randint(9, 40), **facts) + "\n\n" +
                         section("Rulers", wikitable(f"Some rulers of the {k.title}", ["Ruler", "Reign", "Notes"], rulers), 3)))
    big = sorted(k.cities, key=lambda c: (-c.population, c.title))[:6]
    geo = (f"The largest cities of the kingdom are:\n" +
           bullets(f"{c.link()} &ndash; {num(c.population)} inhabitants" for c in big))
    rivers = [r for r in w.rivers if r.kingdom is k]
    mountains = [m for m in w.mountains if m.kingdom is k]
    if rivers:
        geo += "\n\nIts main rivers are " + and_list([r.link() for r in rivers]) + "."
    if mountains:
        top = max(mountains, key=lambda m: (m.height, m.title))
        geo += f" The highest mountain is [[{top.title}]] ({conv(top.height, 'm', 'ft')})."
    parts.append(section("Geography", geo))
    parts.append(section("Economy", f"The currency of the kingdom is the {k.currency}. " + pick(rng, [
        "Its wealth comes from {a} and {b}.", "The main industries are {a} and {b}.",
        "Most people live from farming, {a} and {b}."], a=big[0].industries[0], b=big[1].industries[1])))
    parts += kingdom_extra(w, k, rng)
    lang = k.language
    parts.append(section("Culture", f"The official language is the [[{lang.title}]], written in the {lang.script}. " +
                         " ".join(f"The festival of [[{f.title}]] is held in [[{f.city.title}]] every {f.month}."
                                  for f in w.festivals if f.kingdom is k)))
    parts.append(trailer(rng, k, k.neighbours, [(f"http://example.org/{slug(k.title)}", f"Royal court of the {k.title}")],
                         [f"Kingdoms of {w.continent}"], [("de", f"Königreich {k.name}"), ("fr", f"Royaume de {k.name}")]))
    return "\n\n".join(parts) + "\n"


LANG_WORDS = [("water", 2), ("bread", 1), ("river", 2), ("mountain", 3), ("friend", 2), ("salt", 1),
              ("king", 1), ("lantern", 2), ("winter", 2), ("star", 1), ("road", 1), ("bell", 1)]


LANG_DIALECT = ["with softer consonants", "which keeps many old words", "spoken quickly and with a rising tone",
                "with many loanwords from trade", "close to the written standard", "hard for other speakers to follow"]
LANG_HISTORY = [
    "The oldest written text in the language dates from {y}.", "It became the language of the court of the {k} in {y}.",
    "It borrowed many words from {n} during the wars.", "A grammar of the language was written by monks in {y}.",
    "Its first dictionary was compiled in {y}.", "The spelling was reformed by royal decree in {y}.",
]


def language_article(w: World, lang: Entity) -> str:
    rng = article_rng("language", lang.title)
    k = lang.kingdom
    refs = Refs(rng, lang.title, k.title, k.capital.title)
    wn = NameMaker(rng)
    vocab = [(wn.make(n, n).text.lower(), meaning) for meaning, n in rng.sample(LANG_WORDS, 6)]
    parts = [infobox("language", [("name", lang.name), ("nativename", tpl("lang", lang.code, k.name.lower() + lang.suffix)),
                                  ("states", k.link()), ("speakers", num(lang.speakers)),
                                  ("familycolor", "Vessic" if lang.family == "Vessic" else "Isolate"),
                                  ("fam1", f"{lang.family} languages"), ("script", lang.script),
                                  ("iso3", lang.code)])]
    parts.append(f"'''{lang.title}''' is a language spoken in the [[{k.title}]] by about {num(lang.speakers)} people. "
                 f"It belongs to the {lang.family} family and is written in the {lang.script}"
                 f"{refs.web('speakers', 'Languages of the kingdom')}.")
    parts.append(section("Writing", f"The {lang.script} has {rng.randint(22, 34)} letters. " + pick(rng, [
        "Long vowels were once marked with a doubled apostrophe, written <nowiki>''a''</nowiki> in old manuscripts.",
        "Scribes marked foreign names with square brackets, as in <nowiki>[[Arn]]</nowiki>, a habit later dropped.",
        "Old texts use a sign that printers render as <nowiki>{{</nowiki>, a doubled hook."])))
    vowels = rng.sample(["a", "e", "i", "o", "u", "y", "ä", "ö"], 5)
    parts.append(section("Phonology", "The language has five vowels and about twenty consonants.\n\n" +
                         wikitable("Vowels", ["", "Front", "Back"], [["Close", vowels[0], vowels[1]],
                                                                     ["Mid", vowels[2], vowels[3]],
                                                                     ["Open", vowels[4], "&ndash;"]])))
    dl = "\n".join(f"; {tpl('lang', lang.code, word)}\n: {meaning}" for word, meaning in vocab)
    parts.append(section("Vocabulary", "Some common words:\n" + dl))
    parts.append(section("Grammar", pick(rng, [
        "Nouns have three cases and two genders. The verb comes at the end of the sentence.",
        "Nouns do not change for case; word order is subject, verb, object.",
        "Verbs agree with both subject and object, and adjectives follow the noun."]) + " " +
        f"Plural nouns end in ''-{lang.suffix}''."))
    dialects = [c for c in k.cities[:4]]
    parts.append(section("Dialects", "The main dialects are named after the towns where they are spoken:\n" +
                         bullets(f"the dialect of {c.link()}, " + rng.choice(LANG_DIALECT) for c in dialects)))
    parts.append(section("History", vary(rng, LANG_HISTORY, 2, y=rng.randint(900, 1300), k=k.title,
                                         n=k.neighbours[0].language.name)))
    parts.append(trailer(rng, lang, [k], [], [f"Languages of {w.continent}"], []))
    return "\n\n".join(parts) + "\n"


PERSON_ADJ = ["celebrated", "influential", "well-known", "noted", "prominent", "respected"]
LIFE_EVENTS = [
    "In {y} {pr} travelled to [[{other}]], where {pr} stayed for {n} years.",
    "In {y} {pr} was briefly imprisoned after a quarrel with the city council of [[{city}]].",
    "{Pr} served at the court of {ruler} from {y}.",
    "A fire in {y} destroyed {poss} workshop and many of {poss} early papers.",
    "In {y} {pr} won the prize of the [[{fest}]].",
    "{Pr} spent the winter of {y} in the mountains near [[{mountain}]].",
    "In {y} {pr} was elected to the guild council of [[{city}]].",
]
LEGACY = [
    "A statue of {obj} stands in the main square of [[{city}]].",
    "A street in [[{city}]] is named after {obj}.",
    "{Poss} house in [[{city}]] is now a small museum.",
    "Historians regard {obj} as one of the most important {occ}s of the {cent}.",
    "{Poss} grave in [[{death}]] is still visited on the anniversary of {poss} death.",
    "The {occ}s' guild of the {k} awards a medal in {poss} name.",
]


OCCUPATION_TEXT = {
    "poet": ["{Poss} poems are short and plain, and many of them are about the {river}.",
             "{Pr} wrote in the {lang} rather than in the court language, which made {poss} verse popular in the markets.",
             "Several of {poss} poems are still sung as folk songs in [[{city}]].",
             "{Pr} liked to read {poss} new poems aloud at the inns of the {district} district."],
    "astronomer": ["{Pr} kept a record of the two moons for {n} years from a tower in [[{city}]].",
                   "{Poss} tables of eclipses were used by sailors for a century.",
                   "{Pr} was the first to measure the period of [[{moon}]] to within a day.",
                   "{Pr} built {poss} own instruments of brass and {wood}."],
    "general": ["{Pr} commanded the army of the {k} in {n} campaigns.",
                "{Poss} victory at the ford of the {river} saved [[{city}]] from capture.",
                "{Pr} reorganised the royal cavalry and introduced the long spear.",
                "{Pr} was known for sharing the rations of {poss} soldiers."],
    "cartographer": ["{Poss} map of the {k} was the most accurate of its time.",
                     "{Pr} walked the length of the {river} to draw its course.",
                     "{Poss} maps mark every ford, mill and bridge along the main roads.",
                     "{Pr} measured distances in [[{unit}|{unit_l}s]] and drew mountains as small hills."],
    "architect": ["{Pr} designed bridges, town halls and several churches in the {k}.",
                  "{Poss} buildings use the local {rock} and steep roofs against the snow.",
                  "{Pr} trained a generation of masons in [[{city}]].",
                  "{Poss} drawings of the old walls of [[{city}]] are kept in the royal archive."],
    "physician": ["{Pr} treated the sick during the marsh fever in [[{city}]].",
                  "{Pr} wrote a handbook of healing herbs, with a chapter on {ingredient}.",
                  "{Pr} founded a hospital for travellers near the {river}.",
                  "{Poss} notes describe more than {n} cases of mountain sickness."],
    "composer": ["{Poss} music was written for the [[{instrument}|{instrument_l}]] and for voices.",
                 "{Pr} wrote the hymn sung every year at the opening of the [[{fest}]] festival.",
                 "{Poss} dances are still played at weddings in the {k}.",
                 "{Pr} led the choir of the main church of [[{city}]] for {n} years."],
    "philosopher": ["{Pr} taught that a good life is a life of useful work.",
                    "{Poss} dialogues are set in the markets and ferries of the {river}.",
                    "{Pr} argued that the crown should answer to the towns.",
                    "{Poss} students met in a garden outside [[{city}]]."],
    "explorer": ["{Pr} was the first traveller to cross the [[{range}]] in winter.",
                 "{Poss} journeys took {obj} as far as the shores of the [[{sea}]].",
                 "{Pr} brought back seeds of {ingredient}, which are now grown across the {k}.",
                 "{Pr} travelled with a small party of guides and mules."],
    "painter": ["{Poss} paintings show the daily life of [[{city}]].",
                "{Pr} painted with colours made from the minerals of [[{mountain}]].",
                "{Poss} portraits of the royal family hang in the palace of the {k}.",
                "{Pr} worked mostly on wooden panels of {wood}."],
    "mathematician": ["{Pr} wrote a treatise on the measurement of fields and rivers.",
                      "{Poss} method for square roots was taught in the schools of the {k}.",
                      "{Pr} corresponded with astronomers in [[{city}]] about the motion of the moons.",
                      "{Pr} calculated the height of [[{mountain}]] from its shadow."],
    "merchant": ["{Pr} traded in {ingredient} and {industry} between [[{city}]] and the coast.",
                 "{Pr} owned {n} barges on the {river}.",
                 "{Poss} trading house had agents in every kingdom of [[{continent}]].",
                 "{Pr} lent money to the crown during the war with the {enemy}."],
    "engineer": ["{Pr} built the locks on the {river}.",
                 "{Pr} designed a water mill that was copied across the {k}.",
                 "{Poss} drainage of the marshes near [[{city}]] opened new farmland.",
                 "{Pr} improved the pumps used in the {industry} works."],
    "historian": ["{Poss} chronicle covers the history of the {k} from its founding in {kf}.",
                  "{Pr} collected old charters from the monasteries of the kingdom.",
                  "{Pr} is the main source for the early history of [[{city}]].",
                  "{Pr} wrote in a plain style and named {poss} sources."],
    "weaver": ["{Poss} patterns, with stripes of {colour} and white, are still woven in [[{city}]].",
               "{Pr} led the weavers' guild of [[{city}]] for {n} years.",
               "{Pr} introduced a wider loom from the {enemy}.",
               "{Poss} tapestries show scenes from the founding of the {k}."],
    "sculptor": ["{Poss} statues stand in the squares of [[{city}]].",
                 "{Pr} worked in {rock} from the quarries of [[{mountain}]].",
                 "{Pr} carved the tomb of a king of the {k}.",
                 "{Poss} figures of animals decorate the fountains of the capital."],
    "king": ["{Pr} moved the royal treasury to [[{city}]].", "{Pr} was known as a patron of poets and builders.",
             "{Pr} signed a law protecting the forests of the {k}.", "{Pr} rebuilt the royal road to the coast."],
    "queen": ["{Pr} moved the royal treasury to [[{city}]].", "{Pr} was known as a patron of poets and builders.",
              "{Pr} signed a law protecting the forests of the {k}.", "{Pr} rebuilt the royal road to the coast."],
}
WORK_ABOUT = [
    "was written when the author was {age} years old.",
    "is set in [[{city}]] and its surroundings.",
    "was dedicated to the ruler of the {k}.",
    "describes a journey along the {river}.",
    "was lost for a century and found again in a monastery library.",
    "made {poss} name known outside the {k}.",
    "is the longest of {poss} works.",
    "was copied by hand many times before it was printed.",
]
PERSONAL = [
    "{Pr} married {spouse} in {y}; they had {kids} children.",
    "{Pr} never married and lived with {poss} sister in [[{city}]].",
    "{Pr} married {spouse}, the child of a {job} from [[{other}]], in {y}.",
]
HABITS = [
    "{Pr} was said to rise before dawn and to work standing at a high desk.",
    "Friends described {obj} as quiet, stubborn and generous.",
    "{Pr} kept a garden of herbs and a pair of hunting dogs.",
    "{Pr} walked every morning along the {river}.",
    "{Pr} was a keen player of the board game of towers.",
    "In old age {pr} lost the sight of one eye but continued to work.",
]
HONOURS = ["Order of the Silver Lantern", "Freedom of the city of {city}", "Royal medal of the {k}",
           "Membership of the {uni}", "Honorary citizenship of {other}", "Order of the Heron"]


def person_lead(p: Entity) -> str:
    return (f"'''{p.title}''' is {article_a(PERSON_ADJ[len(p.title) % len(PERSON_ADJ)])} "
            f"{p.kingdom.adj} {p.occupation} of the {century(p.born + 30)}.")


def person_article(w: World, p: Entity) -> str:
    rng = article_rng("person", p.title)
    k = p.kingdom
    refs = Refs(rng, p.title, k.title, p.city.title)
    pr, poss, obj = ("she", "her", "her") if p.female else ("he", "his", "him")
    Pr, Poss = pr.capitalize(), poss.capitalize()
    ruler = k.ruler
    parts = ["{{DEFAULTSORT:" + f"{p.surname}, {p.given}" + "}}"]
    known = p.works[0][0] if p.works else None
    parts.append(infobox("person", [
        ("name", p.title),
        ("image", f"{p.title} portrait.jpg"),
        ("caption", f"Portrait of {p.title}, <small>c. {p.died - 5}</small>"),
        ("birth_date", p.born),
        ("birth_place", f"[[{p.city.title}]], [[{k.title}]]"),
        ("death_date", f"{p.died} (aged {p.died - p.born})"),
        ("death_place", p.death_city.link()),
        ("occupation", p.occupation.capitalize()),
        ("known_for", f"''{known}''" if known else None),
        ("reign", span(*p.reign) if hasattr(p, "reign") else None),
    ]))
    lead = person_lead(p)
    lead += f" Born in [[{p.city.title}]] in {p.born}, {pr} died in [[{p.death_city.title}]] in {p.died}."
    if hasattr(p, "reign"):
        lead += f" {Pr} ruled the [[{k.title}]] from {p.reign[0]} to {p.reign[1]}."
    elif known:
        lead += f" {Pr} is best known for ''[[{known}]]''." if any(b.title == known for b in w.books) else \
            f" {Pr} is best known for ''{known}''."
    parts.append(lead)
    facts = dict(pr=pr, Pr=Pr, poss=poss, Poss=Poss, obj=obj, city=p.city.title, occ=p.occupation,
                 other=w.cities[rng.randrange(70)].title, ruler=ruler.link() if ruler is not p else "the previous ruler",
                 fest=w.festivals[rng.randrange(20)].title, mountain=p.city.mountain.title,
                 death=p.death_city.title, k=k.title, cent=century(p.born + 30), kids=rng.randint(1, 6),
                 job=rng.choice(["weaver", "merchant", "physician", "scribe", "painter"]))
    early = (f"{p.given} {p.surname} was born in {p.born} in [[{p.city.title}]], the child of {article_a(p.parent_job)}"
             f"{refs.web('birth', 'Register of births')}. ")
    if p.university is not None and not hasattr(p, "reign"):
        early += f"{Pr} studied at the [[{p.university.title}]]"
        early += f" under {p.teacher.link()}." if p.teacher else "."
    elif p.teacher:
        early += f"{Pr} was taught by {p.teacher.link()}."
    else:
        early += pick(rng, ["{Pr} learned to read from a travelling scribe.",
                            "As a child {pr} worked in the family trade.",
                            "{Pr} was educated at home by private tutors."], **facts)
    parts.append(section("Early life", early))
    ys = sorted(rng.sample(range(p.born + 18, p.died), 4))
    # a ruler is not imprisoned by a town council nor serves at its own court
    events = [e for i, e in enumerate(LIFE_EVENTS) if not (hasattr(p, "reign") and i in (1, 2, 6))]
    career = " ".join(e.format(y=ys[i], n=rng.randint(2, 9), **facts)
                      for i, e in enumerate(rng.sample(events, min(4, len(events)))))
    body = career
    if hasattr(p, "reign"):
        body = (f"{Pr} came to the throne in {p.reign[0]}. " + pick(rng, [
            "{Poss} reign was remembered as a time of peace and good harvests.",
            "{Pr} rebuilt the walls of the capital and reformed the coinage.",
            "{Poss} reign saw two wars with neighbouring kingdoms."], **facts) + " " + career)
    parts.append(section("Career" if not hasattr(p, "reign") else "Reign", body + refs.web("birth", "")))
    if p.works:
        items = []
        for title, year in sorted(p.works, key=lambda t: (t[1], t[0])):
            linked = f"[[{title}]]" if any(b.title == title for b in w.books) else title
            items.append(f"''{linked}'' ({year})")
        about = []
        for title, year in sorted(p.works, key=lambda t: (t[1], t[0]))[:3]:
            about.append(f"''{title}'' ({year}) " + pick(rng, WORK_ABOUT, city=p.city.title, k=k.title,
                                                            river=(p.city.river or p.city.water).title,
                                                            age=year - p.born, poss=poss))
        parts.append(section("Works", f"{Poss} main {WORK_OCCUPATIONS[p.occupation]} include:\n" + bullets(items, "#")
                             + "\n\n" + " ".join(about)))
    students = [q for q in w.people if q.teacher is p]
    if students:
        parts.append(section("Students", bullets(f"{q.link()} ({span(q.born, q.died)})" for q in students)))
    occ = dict(facts, river=(p.city.river or p.city.water).title, lang=k.language.title, district=rng.choice(DISTRICTS),
               n=rng.randint(3, 40), moon=w.sky["moon1"].title, wood=rng.choice(["oak", "walnut", "pear wood"]),
               unit=w.unit.title, unit_l=w.unit.name, rock=p.city.mountain.rock, ingredient=rng.choice(INGREDIENTS),
               instrument=w.instruments[len(p.title) % 8].title, instrument_l=w.instruments[len(p.title) % 8].name,
               range=p.city.mountain.range.title, sea=w.waters[len(p.title) % 3].title,
               colour=rng.choice(["red", "blue", "green", "ochre"]), industry=p.city.industries[0],
               continent=str(w.continent), enemy=k.neighbours[0].title, kf=k.founded)
    style = " ".join(e.format(**occ) for e in rng.sample(OCCUPATION_TEXT[p.occupation], 3))
    parts.append(section(pick(rng, ["Work", "Style and ideas", "Achievements"]) if not hasattr(p, "reign") else "Policies", style))
    spouse = f"{NameMaker(rng).make(2, 2)} {NameMaker(rng).make(2, 2)}"
    personal = pick(rng, PERSONAL, spouse=spouse, y=p.born + rng.randint(20, 32), **facts) + " " + \
        " ".join(e.format(**occ) for e in rng.sample(HABITS, 2))
    parts.append(section("Personal life", personal))
    parts += person_extra(w, p, rng, facts)
    timeline = [f"{p.born}: born in [[{p.city.title}]]"]
    timeline += [f"{y}: ''{t}''" for t, y in sorted(p.works, key=lambda t: (t[1], t[0]))[:2]]
    timeline += [f"{p.died}: died in [[{p.death_city.title}]]"]
    honours = [h.format(city=p.city.title, k=k.title, uni=(p.university.title if p.university else f"Academy of {k.capital.title}"),
                        other=facts["other"]) for h in rng.sample(HONOURS, 2)]
    parts.append(section("Honours", bullets(honours)))
    if len(timeline) > 2:
        parts.append(section("Timeline", bullets(timeline)))
    legacy = " ".join(e.format(**facts) for e in rng.sample(LEGACY, 2))
    parts.append(section("Legacy", legacy))
    notes = None
    if rng.random() < 0.3:
        notes = bullets([f"Some sources give {p.born + 1} as the year of birth.{refs.note('The parish register is damaged.')}"])
    parts.append(trailer(rng, p, [p.city, k], [], [f"{century(p.born + 30).capitalize()} people",
                                                    f"People from {p.city.title}", f"{k.adj} {p.occupation}s"],
                         [], notes=notes,
                         further=[f"Orrin, T. (1493). ''The life of {p.title}''. {p.city.title}: Guild Press."]
                         if rng.random() < 0.3 else None))
    return "\n\n".join(parts) + "\n"


def book_article(w: World, b: Entity) -> str:
    rng = article_rng("book", b.title)
    p = b.author
    refs = Refs(rng, b.title, p.kingdom.title, p.city.title)
    parts = [infobox("book", [("name", f"''{b.title}''"), ("author", p.link()), ("country", p.kingdom.link()),
                              ("language", p.kingdom.language.link(p.kingdom.language.name)),
                              ("genre", b.genre.capitalize()), ("pub_date", b.year), ("pages", b.pages)])]
    parts.append(f"'''''{b.title}''''' is {article_a(b.genre)} by [[{p.title}]], first published in {b.year}"
                 f"{refs.web('first', 'First editions')}. It has {b.chapters} chapters and about {b.pages} pages.")
    parts.append(section("Contents", pick(rng, [
        "The book follows a journey from [[{c}]] to the coast, one chapter for each stop.",
        "Each chapter describes one season in [[{c}]] and the people who live there.",
        "The work mixes memories of [[{c}]] with stories heard from travellers."], c=p.city.title) + " " +
        f"It was written in {p.kingdom.language.name} and later translated into several languages."))
    parts.append(section("Reception", pick(rng, [
        "Early readers praised its plain style.", "The book was banned in {y} and reprinted in {y2}.",
        "It was read aloud at the court of the {k} soon after it appeared."],
        y=b.year + 3, y2=b.year + 12, k=p.kingdom.title) + refs.web("first", "")))
    parts.append(trailer(rng, b, [p], [], ["Books by " + p.title], []))
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# Animals, foods, festivals, treaties, universities, instruments, sky and science
# --------------------------------------------------------------------------------------------


def animal_lead(a: Entity) -> str:
    where = {"river": "along the", "lake": "in", "mountain": "on the slopes of", "forest": "in the forests below"}[a.habitat]
    return f"'''{a.title}''' is a species of {a.kind} found {where} [[{a.place.title}]] in the [[{a.kingdom.title}]]."


def animal_article(w: World, a: Entity) -> str:
    rng = article_rng("animal", a.title)
    refs = Refs(rng, a.title, a.kingdom.title, a.kingdom.capital.title)
    genus = NameMaker(rng).make(2, 3).text
    parts = [infobox("animal", [("name", a.title), ("image", f"{a.title} adult.jpg"),
                                ("image_caption", f"An adult {a.name} near [[{a.place.title}]]"),
                                ("status", a.status.capitalize()), ("classis", a.cls.capitalize()),
                                ("genus", f"''{genus}''"), ("species", f"''{genus} {a.name}''")])]
    size_unit = "cm"
    lead = animal_lead(a) + " " + pick(rng, [
        "It is {a_colour} {cls} that feeds mainly on {d0}.", "This {colour} {cls} eats {d0} and {d1}.",
        "The {name} has {colour} colouring and lives on a diet of {d0}."],
        colour=a.colour, a_colour=article_a(a.colour), cls=a.cls, d0=a.diet[0], d1=a.diet[1], name=a.name)
    lead += f" Its scientific name is ''{genus} {a.name}''."
    parts.append(lead)
    desc = (f"Adults reach a length of {a.length}{NBSP}{size_unit} <small>(about {round(a.length / 2.54)} inches)</small> "
            f"and live for up to {a.lifespan} years{refs.web('size', 'Field guide')}. ")
    desc += pick(rng, ["Males and females look alike.", "Males are larger and more brightly coloured than females.",
                       "The young are paler than the adults and darken in their second year.",
                       "In winter the coat becomes thicker and lighter."])
    parts.append(section("Description", thumb(f"{a.title} drawing.png", f"Drawing of the {a.name} by a [[{a.kingdom.title}]] naturalist",
                                              prefix="File") + "\n" + desc))
    parts.append(section("Distribution and habitat", f"The {a.name} lives {a.habitat and {'river': 'along', 'lake': 'in', 'mountain': 'on', 'forest': 'near'}[a.habitat]} "
                         f"[[{a.place.title}]]. " + pick(rng, [
                             "It is rarely seen far from water.", "It prefers quiet places with little human activity.",
                             "It is found from the lowlands up to the tree line."]) + f" Its conservation status is {a.status}."))
    eco = section("Diet", f"The {a.name} feeds on {a.diet[0]} and {a.diet[1]}.", 3)
    eco += "\n\n" + section("Breeding", pick(rng, [
        "Breeding takes place in {m}; the female lays {n} eggs.", "Young are born in {m}, usually {n} at a time.",
        "Pairs form in {m} and raise up to {n} young each year."], m=MONTHS[rng.randrange(12)], n=rng.randint(2, 8)), 3)
    parts.append(section("Behaviour and ecology", eco))
    if rng.random() < 0.5:
        parts.append(section("In culture", pick(rng, [
            "The {name} appears on the coat of arms of several towns in the {k}.",
            "Folk songs of the {k} tell of the {name} as a messenger of spring.",
            "Hunting the {name} was forbidden by royal decree in {y}."], name=a.name, k=a.kingdom.title,
            y=rng.randint(1200, 1490))))
    parts += animal_extra(w, a, rng)
    parts.append(trailer(rng, a, [a.place], [], [f"Animals of the {a.kingdom.title}", f"{a.cls.capitalize()}s"], []))
    return "\n\n".join(parts) + "\n"


def food_lead(f: Entity) -> str:
    return (f"'''{f.title}''' is {article_a(f.kind)} from [[{f.city.title}]] made from "
            f"{f.ingredients[0]} and {f.ingredients[1]}.")


def food_article(w: World, f: Entity) -> str:
    rng = article_rng("food", f.title)
    refs = Refs(rng, f.title, f.kingdom.title, f.city.title)
    parts = [infobox("food", [("name", f.title), ("image", f"{f.title} on a plate.jpg"), ("country", f.kingdom.link()),
                              ("region", f.city.link()), ("type", f.kind.capitalize()),
                              ("main_ingredient", ", ".join(f.ingredients))])]
    lead = food_lead(f) + f" It has been made since at least {f.first}{refs.web('origin', 'Food of the kingdom')}."
    if f.festival:
        lead += f" It is traditionally eaten during the [[{f.festival.title}]] festival."
    parts.append(lead)
    parts.append(section("Ingredients", "A typical recipe uses:\n" + "\n".join(
        [f"* {f.ingredients[0]}", f"* {f.ingredients[1]}", f"* {f.ingredients[2]}",
         f"** {rng.choice(['salt', 'a pinch of emberleaf', 'spring water', 'butter'])} to taste"])))
    steps = [f"Prepare the {f.ingredients[0]}.", f"Add the {f.ingredients[1]} and mix well.",
             rng.choice(["Leave to rest overnight.", "Bake in a hot oven.", "Simmer slowly.", "Smoke over juniper wood."]),
             f"Finish with the {f.ingredients[2]}."]
    parts.append(section("Preparation", f"Preparation takes about {f.hours} hour{'s' if f.hours > 1 else ''}:\n" +
                         bullets(steps, "#")))
    parts.append(section("History", pick(rng, [
        "Cooks in [[{c}]] first wrote down the recipe in {y}.", "The dish was served at the royal court of the {k} from {y}.",
        "According to legend, {name} was first made by a ferryman's wife in {y}."],
        c=f.city.title, y=f.first, k=f.kingdom.title, name=f.title) + refs.web("origin", "")))
    parts += food_extra(w, f, rng)
    parts.append(trailer(rng, f, [f.city] + ([f.festival] if f.festival else []), [],
                         [f"Cuisine of the {f.kingdom.title}"], []))
    return "\n\n".join(parts) + "\n"


def festival_lead(fe: Entity) -> str:
    return f"'''{fe.title}''' is a festival held every {fe.month} in [[{fe.city.title}]] to celebrate {fe.celebrates}."


def festival_article(w: World, fe: Entity) -> str:
    rng = article_rng("festival", fe.title)
    refs = Refs(rng, fe.title, fe.kingdom.title, fe.city.title)
    parts = [infobox("holiday", [("holiday_name", fe.title), ("observedby", fe.city.link()),
                                 ("date", fe.month), ("duration", f"{fe.days} days"),
                                 ("significance", f"Celebrates {fe.celebrates}"), ("first_time", fe.first)])]
    parts.append(festival_lead(fe) + f" It was first held in {fe.first} and lasts {fe.days} day{'s' if fe.days > 1 else ''}."
                 f" About {num(fe.visitors)} people attend each year{refs.web('visitors', 'Festival records')}.")
    trad = pick(rng, ["Houses are decorated with green branches and paper lanterns.",
                      "Boats on the river are painted in bright colours for the occasion.",
                      "Children go from door to door singing old songs.",
                      "A bonfire is lit on the hill above the town at midnight."])
    trad += f" The traditional dish is [[{fe.food.title}]], {article_a(fe.food.kind)} made from {fe.food.ingredients[0]}."
    parts.append(section("Traditions", trad))
    days = "\n".join(f"; Day {i + 1}\n: {rng.choice(['Procession through the old town.', 'Market and music.', 'Boat races on the river.', 'Feast in the main square.', 'Rest and prayers.'])}"
                     for i in range(min(fe.days, 4)))
    parts.append(section("Programme", days))
    parts += festival_extra(w, fe, rng)
    parts.append(trailer(rng, fe, [fe.city, fe.food], [(f"http://example.org/{slug(fe.title)}", f"{fe.title} festival committee")],
                         [f"Festivals in {fe.city.title}", f"{fe.month} events"], []))
    return "\n\n".join(parts) + "\n"


TREATY_TERMS = [
    "The border follows the middle of the river.", "Both kingdoms keep their present borders.",
    "Merchants of both kingdoms may trade freely in each other's markets.",
    "Prisoners of war are to be released within one year.", "Tolls on the salt road are fixed for twenty years.",
    "A joint council meets every five years.", "The kingdoms will not make alliances against each other.",
    "Shipwrecked sailors of either kingdom shall be helped and sent home.",
    "Fishing on the border lakes is shared equally.", "Each kingdom keeps an envoy at the other's court.",
    "Runaway serfs are not to be returned.", "The coinage of each kingdom is accepted in the other's markets.",
]
TREATY_AFTER = [
    "The treaty held until {y}, when raids began again.", "Trade between the {a} and the {b} doubled within ten years.",
    "A stone with the text of the treaty was set up in the market of [[{c}]].",
    "It was renewed in {y} with small changes.", "Historians see it as the start of a long peace.",
    "Some lords of the {b} refused to accept it.",
]


def treaty_article(w: World, t: Entity) -> str:
    rng = article_rng("treaty", t.title)
    refs = Refs(rng, t.title, t.a.title, t.city.title)
    parts = [infobox("treaty", [("name", t.title), ("date_signed", t.year), ("location_signed", t.city.link()),
                                ("signatories", f"{t.a.link()}<br />{t.b.link()}"), ("languages", f"{t.a.language.name}, {t.b.language.name}")])]
    parts.append(f"'''{t.title}''' is {article_a(t.kind)} signed in [[{t.city.title}]] in {t.year} between the "
                 f"[[{t.a.title}]] and the [[{t.b.title}]]. It has {t.articles} articles{refs.web('text', 'Text of the treaty')}.")
    terms = rng.sample(TREATY_TERMS, t.articles)
    parts.append(section("Terms", "The main terms were:\n" + bullets(terms, "#")))
    parts.append(section("Background", pick(rng, [
        "The treaty ended {n} years of border raids.", "It followed a long dispute over fishing rights.",
        "It was negotiated after a failed harvest made trade necessary."], n=rng.randint(3, 30))))
    parts.append(section("Aftermath", vary(rng, TREATY_AFTER, 2, a=t.a.title, b=t.b.title, y=t.year + rng.randint(3, 40),
                                           c=t.city.title)))
    parts.append(trailer(rng, t, [t.a, t.b, t.city], [], ["Treaties"], []))
    return "\n\n".join(parts) + "\n"


def university_article(w: World, u: Entity) -> str:
    rng = article_rng("university", u.title)
    refs = Refs(rng, u.title, u.kingdom.title, u.city.title)
    kind = "university" if u.title.startswith("University") else "academy"
    parts = [infobox("university", [("name", u.title), ("established", u.founded), ("founder", u.founder.link()),
                                    ("city", u.city.link()), ("country", u.kingdom.link()), ("students", num(u.students)),
                                    ("website", tpl("URL", f"example.org/{slug(u.title)}"))])]
    parts.append(f"'''{u.title}''' is {article_a(kind)} in [[{u.city.title}]], founded in {u.founded} by [[{u.founder.title}]]. "
                 f"It has about {num(u.students)} students{refs.web('students', 'Register of students')}.")
    rows = [[fac, rng.randint(2, 40) * 10, rng.randint(u.founded, 1495)] for fac in u.faculties]
    parts.append(section("Faculties", wikitable(f"Faculties of the {u.title}", ["Faculty", "Students", "Founded"], rows)))
    alumni = [p for p in w.people if p.university is u][:6]
    if alumni:
        parts.append(section("Notable students", bullets(f"{p.link()}, {p.occupation}" for p in alumni)))
    parts.append(trailer(rng, u, [u.city], [(f"http://example.org/{slug(u.title)}", f"{u.title} website")],
                         [f"Universities in the {u.kingdom.title}"], []))
    return "\n\n".join(parts) + "\n"


INSTRUMENT_MAKING = [
    "The body is carved from a single block of {wood}.", "A full-size {n} is about {cm} cm long.",
    "The {part} are tuned with wooden pegs.", "Makers in [[{c}]] still build it by hand.",
    "Its sound box is covered with goat skin.", "The {part} were once made of gut and are now made of brass wire.",
    "A good {n} takes a maker about a month to finish.", "Old instruments are decorated with inlays of bone.",
]
INSTRUMENT_HISTORY = [
    "The composer [[{p}]] wrote several pieces for it.", "In {y} the guild of instrument makers fixed its shape.",
    "Travelling players carried it to the neighbouring kingdoms.", "It was played at the court of the {k} from {y}.",
    "For a time it was forbidden in churches as too worldly.", "By {y} almost every village band had a {n}.",
]


def instrument_article(w: World, ins: Entity) -> str:
    rng = article_rng("instrument", ins.title)
    refs = Refs(rng, ins.title, ins.kingdom.title, ins.kingdom.capital.title)
    parts = [infobox("instrument", [("name", ins.title), ("classification", ins.kind.capitalize()),
                                    ("developed", century(rng.randint(1000, 1400))), ("origin", ins.kingdom.link())])]
    parts.append(f"'''{ins.title}''' is {article_a(ins.kind)} from the [[{ins.kingdom.title}]] with {ins.count} {ins.part}. "
                 f"It is usually made of {ins.wood}{refs.web('making', 'Instrument makers')}.")
    parts.append(section("Playing", pick(rng, [
        "The {n} is played at weddings and at the harvest festival.",
        "Players of the {n} sit cross-legged and hold the instrument on the knee.",
        "The {n} accompanies dancing in the villages of the {k}."], n=ins.name, k=ins.kingdom.title)))
    players = [p for p in w.people if p.occupation == "composer"]
    player = players[len(ins.title) % len(players)]
    parts.append(section("Construction", vary(rng, INSTRUMENT_MAKING, 3, wood=ins.wood, n=ins.name, part=ins.part,
                                                   cm=rng.randint(30, 140), c=ins.kingdom.capital.title)))
    parts.append(section("History", f"The {ins.name} is first mentioned in a chronicle of [[{ins.kingdom.capital.title}]]. "
                         + vary(rng, INSTRUMENT_HISTORY, 2, n=ins.name, p=player.title, k=ins.kingdom.title,
                                y=rng.randint(1150, 1480))))
    parts.append(trailer(rng, ins, [ins.kingdom], [], ["Musical instruments"], []))
    return "\n\n".join(parts) + "\n"


def sky_article(w: World, e: Entity) -> str:
    rng = article_rng("sky", e.title)
    k = w.kingdoms[0]
    refs = Refs(rng, e.title, k.title, k.capital.title)
    sun, m1, m2, comet = w.sky["sun"], w.sky["moon1"], w.sky["moon2"], w.sky["comet"]
    if e is sun:
        parts = [f"'''{e.title}''' is the star around which the world of [[{w.continent}]] orbits. "
                 f"Astronomers of the {k.title} call it simply {e.name}{refs.web('obs', 'Observatory records')}.",
                 section("Observation", f"Two moons, [[{m1.title}|{m1.name}]] and [[{m2.title}|{m2.name}]], cross its path "
                                        "in the sky, and eclipses are recorded in the chronicles."),
                 section("Brightness", "The apparent brightness follows the inverse-square law:\n\n"
                                       ":<math>F = \\frac{L}{4 \\pi d^2}</math>\n\n"
                                       "where <math>L</math> is the luminosity and <math>d</math> the distance.")]
    elif e is comet:
        p = e.discoverer
        parts = [f"'''{e.title}''' is a comet that returns every {e.period} years. It was discovered in {e.year} by "
                 f"[[{p.title}]], {article_a(p.occupation)} from [[{p.city.title}]]{refs.web('obs', 'Observatory records')}.",
                 section("Orbit", f"The comet moves on a long ellipse with eccentricity <math>e \\approx 0.9{rng.randint(1, 8)}</math>. "
                                  f"Its period of {e.period} years gives a semi-major axis of\n\n"
                                  ":<math>a = T^{2/3}</math>\n\nin units of the world's orbit.")]
    else:
        other = m2 if e is m1 else m1
        size = "larger" if e is m1 else "smaller"
        parts = [infobox("planet", [("name", e.name), ("satellite_of", f"[[{w.continent}]]"),
                                    ("orbital_period", f"{e.period} days"), ("mean_radius", conv(e.radius, "km")),
                                    ("semimajor", conv(e.distance, "km", "mi"))]),
                 f"'''{e.title}''' is the {size} of the two moons of the world of [[{w.continent}]]. "
                 f"It orbits at a distance of {conv(e.distance, 'km', 'mi')} and goes round once every {e.period} days"
                 f"{refs.web('obs', 'Observatory records')}. The other moon is [[{other.title}|{other.name}]].",
                 section("Orbit", "The period and distance obey the law of orbits:\n\n"
                                  ":<math>T^2 = \\frac{4\\pi^2}{G M} a^3</math>\n\n"
                                  f"Its radius is {conv(e.radius, 'km')}, so its surface area is about "
                                  f"<math>4 \\pi r^2</math> = {num(round(4 * 3.14159 * e.radius ** 2))}{NBSP}km<sup>2</sup>.")]
        if e is m1:
            parts.append(section("Surface", f"The surface of {e.name} shows dark plains and bright mountains. "
                                            "Astronomers named its largest plain the Sea of Lanterns, and its brightest crater "
                                            f"after [[{w.laws[0].person.title}]]."))
        else:
            parts.append(section("Discovery", f"{e.name} is faint and fast, and was long thought to be a star. "
                                              "Its motion was first noticed by shepherds, and its orbit was measured "
                                              f"by [[{w.laws[0].person.title}]], whose law of orbits it follows closely."))
        if rng.random() < 0.9:
            parts.append(section("Eclipses", "When both moons are full on the same night, people of the "
                                             f"[[{k.title}]] light lanterns on the rooftops."))
    parts.append(trailer(rng, e, [x for x in (sun, m1, m2) if x is not e], [], ["Astronomy"], []))
    return "__TOC__\n" + "\n\n".join(parts) + "\n"


def law_article(w: World, law: Entity) -> str:
    rng = article_rng("law", law.title)
    p = law.person
    refs = Refs(rng, law.title, p.kingdom.title, p.city.title)
    if law.topic == "orbits":
        what = "a rule of astronomy that relates the period of a moon to its distance"
        formula = "T^2 \\propto a^3"
        expl = "where <math>T</math> is the orbital period and <math>a</math> the mean distance."
    elif law.topic == "cooling":
        what = "a rule of natural philosophy that describes how a hot body loses heat"
        formula = "\\frac{dT}{dt} = -k (T - T_\\text{env})"
        expl = "where <math>k</math> is a constant of the body and <math>T_\\text{env}</math> the temperature of the air."
    else:
        what = "a mathematical constant used by the surveyors of the kingdom"
        formula = "N = \\sum_{n=1}^{\\infty} \\frac{1}{n^3} \\approx 1.202"
        expl = "It appears in the measurement of round fields and in the theory of bells."
    parts = [f"'''{law.title}''' is {what}. It was stated by [[{p.title}]] in {law.year}"
             f"{refs.web('paper', 'Transactions of the academy')}.",
             section("Statement", f":<math>{formula}</math>\n\n{expl}"),
             section("History", f"[[{p.title}]], {article_a(p.occupation)} from [[{p.city.title}]], "
                                f"{pick(rng, ['published the rule in a short letter', 'presented the result to the academy', 'wrote down the rule after years of observations'])}."
                                " Later scholars confirmed it with better instruments.")]
    parts.append(trailer(rng, law, [p], [], ["Natural philosophy"], []))
    return "\n\n".join(parts) + "\n"


def unit_article(w: World, u: Entity) -> str:
    rng = article_rng("unit", u.title)
    k = u.kingdom
    refs = Refs(rng, u.title, k.title, k.capital.title)
    parts = [f"'''{u.title}''' is a unit of length used in the [[{k.title}]], equal to {conv(u.metres, 'm', 'ft')}"
             f"{refs.web('measure', 'Weights and measures')}. A {u.name} is divided into 100 steps.",
             section("Conversion", wikitable(f"The {u.name} and related units", ["Unit", "In {0}s".format(u.name), "Metres"],
                                             [["step", "0.01", round(u.metres / 100, 2)], [u.name, "1", u.metres],
                                              ["league", "20", u.metres * 20]]) +
                     f"\n\nA distance <math>d</math> in metres is <math>d / {u.metres}</math> {u.name}s."),
             section("History", f"The {u.name} was fixed by royal decree in [[{k.capital.title}]]. "
                                "A bronze rod kept in the royal treasury defines its length.")]
    parts.append(trailer(rng, u, [k], [], ["Units of length"], []))
    return "\n\n".join(parts) + "\n"


def continent_article(w: World) -> str:
    rng = article_rng("continent", w.continent.text)
    k0 = w.kingdoms[0]
    refs = Refs(rng, w.continent.text, k0.title, k0.capital.title)
    rows = [[k.link(), k.capital.link(), num(k.population), k.founded] for k in w.kingdoms]
    parts = [f"'''{w.continent}''' is a continent divided among eight kingdoms. It is the setting of every article in "
             f"this wiki{refs.web('map', 'Maps of the continent')}.",
             section("Kingdoms", wikitable(f"Kingdoms of {w.continent}", ["Kingdom", "Capital", "Population", "Founded"], rows, True)),
             section("Geography", "The main mountain ranges are " + and_list([r.link() for r in w.ranges]) + ". "
                     "The seas around it are " + and_list([x.link() for x in w.waters if x.sea]) + ".")]
    parts.append(trailer(rng, None, w.kingdoms[:3], [], ["Continents"], [("de", w.continent.text), ("fr", w.continent.text)]))
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# Extra sections: more varied prose per kind (each drawn from the article's own RNG)
# --------------------------------------------------------------------------------------------

CONSERVATION = {
    "common": ["The species is widespread and not threatened.", "Numbers are stable across its range."],
    "uncommon": ["It is uncommon and has declined where the {habitat} has been cleared.",
                 "Local numbers rise and fall with the harvests of its food."],
    "rare": ["It is rare, and fewer than {n} pairs are thought to remain.",
             "Collectors once took many of its eggs, and it has never recovered."],
    "endangered": ["It is endangered; the crown of the {k} has protected it since {y}.",
                   "Drainage and hunting have reduced it to a few sites near [[{place}]]."],
}
HUMANS = [
    "Farmers consider the {name} a sign of good weather.",
    "The {name} is sometimes kept in gardens to control pests.",
    "Its feathers or skin were once used to decorate the hats of guild masters.",
    "Children in the {k} learn a counting rhyme about the {name}.",
    "Its call is imitated by hunters with a small wooden whistle.",
    "Painters of the {k} often show the {name} in scenes of the river.",
    "Old herbals claim that the {name} brings luck to travellers.",
]


def animal_extra(w: World, a: Entity, rng: random.Random) -> list[str]:
    k = a.kingdom
    namers = [p for p in w.people if p.occupation in ("physician", "explorer", "philosopher")]
    namer = namers[len(a.title) % len(namers)]
    y = rng.randint(namer.born + 25, namer.died)
    tax = (f"The {a.name} was first described in {y} by [[{namer.title}]], who saw it near [[{a.place.title}]]. "
           + pick(rng, ["Its closest relative lives in the mountains of the {n}.",
                        "It is the only member of its genus.", "Two subspecies are recognised, one in the north and one in the south.",
                        "Its relationships with other {cls}s are still uncertain."], n=k.neighbours[0].title, cls=a.cls))
    word = a.name + k.language.suffix
    names = (f"In the [[{k.language.title}]] it is called {tpl('lang', k.language.code, word)}. "
             + pick(rng, ["The name imitates its call.", "The name means \"{m}\".", "Fishermen call it the \"{m}\"."],
                    m=rng.choice(["little ghost", "river king", "grey cloak", "stone runner", "night bell", "old friend"])))
    cons = pick(rng, CONSERVATION[a.status], habitat=a.habitat, n=rng.randint(20, 400), k=k.title,
                y=rng.randint(1300, 1490), place=a.place.title)
    hum = " ".join(e.format(name=a.name, k=k.title) for e in rng.sample(HUMANS, 2))
    return [section("Taxonomy", tax), section("Names", names), section("Conservation", cons),
            section("Relationship with humans", hum)]


SERVING = [
    "It is served warm with a cup of {drink}.",
    "{name} is eaten cold on long journeys, wrapped in a cloth.",
    "It is usually shared from one large dish in the middle of the table.",
    "Inns along the {river} serve it every day of the year.",
    "It is cut into thin slices and eaten with pickled {veg}.",
    "Families prepare it the night before a holiday.",
]


def food_extra(w: World, f: Entity, rng: random.Random) -> list[str]:
    k = f.kingdom
    others = [c for c in k.cities if c is not f.city][:3]
    variants = []
    for c in others[:2]:
        variants.append(f"* The {c.title} {f.kind} adds {rng.choice([i for i in INGREDIENTS if i not in f.ingredients])}.")
        if rng.random() < 0.5:
            variants.append(f"** A sweet version is sold at the market of [[{c.title}]].")
    variants.append(f"* A {rng.choice(['fasting', 'summer', 'winter', 'festival'])} version leaves out the {f.ingredients[1]}.")
    serving = " ".join(e.format(drink=rng.choice(["mint tea", "plum brandy", "barley beer", "sour milk"]), name=f.title,
                                river=(f.city.river or f.city.water).title, veg=rng.choice(["cabbage", "beets", "onions"]))
                       for e in rng.sample(SERVING, 2))
    kcal = rng.randint(90, 520)
    nut = wikitable("Per 100&nbsp;g", ["Nutrient", "Amount"],
                    [["Energy", f"{kcal}&nbsp;kcal"], ["Protein", f"{rng.randint(2, 25)}&nbsp;g"],
                     ["Fat", f"{rng.randint(1, 30)}&nbsp;g"]])
    return [section("Variants", "\n".join(variants)), section("Serving", serving), section("Nutrition", nut)]


FESTIVAL_RULES = ["No work may be done on the first day.", "Every household must light one lantern.",
                  "The youngest child opens the feast.", "Boats may not sail after sunset.",
                  "Debts are forgiven up to the value of one silver mark.", "Strangers are given a free meal."]


def festival_extra(w: World, fe: Entity, rng: random.Random) -> list[str]:
    k = fe.kingdom
    inst = [i for i in w.instruments if i.kingdom is k] or w.instruments
    ins = inst[len(fe.title) % len(inst)]
    hist = (f"The festival was first held in {fe.first}. " + pick(rng, [
        "It began as a market day and grew into a week of celebrations.",
        "According to tradition it was started by the guild of {i} workers.",
        "It was banned for a few years after {y}, when a fire broke out during the celebrations.",
        "Royal visitors attended it for the first time in {y}."], i=fe.city.industries[0], y=fe.first + rng.randint(20, 60)))
    music = (f"Music is played on the [[{ins.title}|{ins.name}]], {article_a(ins.kind)} of the [[{ins.kingdom.title}]]. "
             + pick(rng, ["Dancers form long lines that wind through the streets.",
                          "Each district has its own band and its own tune.",
                          "A contest of singers is held on the last evening."]))
    rules = bullets(rng.sample(FESTIVAL_RULES, 3), "#")
    return [section("History", hist), section("Music and dance", music), section("Customs", "By old custom:\n" + rules)]


MOUNTAIN_CLIMATE = [
    "Snow covers the summit for {n} months of the year.", "Strong winds blow from the west on most afternoons.",
    "Thunderstorms are common in summer, and climbers start before dawn.", "The upper slopes are often in cloud.",
]


def mountain_extra(w: World, m: Entity, rng: random.Random) -> list[str]:
    k = m.kingdom
    name = (f"The name {m.name} comes from the [[{k.language.title}]] and means \"{rng.choice(NAME_MEANINGS)}\". "
            + pick(rng, ["Shepherds have their own name for the peak.", "Older maps spell it differently.",
                         "It was also known as the White Mountain."]))
    clim = " ".join(e.format(n=rng.randint(3, 9)) for e in rng.sample(MOUNTAIN_CLIMATE, 2))
    huts = [[f"{rng.choice(['Upper', 'Lower', 'Old', 'Stone', 'Shepherds'])} hut", conv(rng.randint(m.height // 3, m.height - 100), "m"),
             rng.randint(6, 40)] for _ in range(rng.randint(2, 3))]
    culture = pick(rng, ["The mountain appears on the coins of the {k}.", "Poets of the {k} call it the roof of the kingdom.",
                         "Pilgrims climb to a small shrine below the summit every summer.",
                         "A legend says that a giant sleeps under the mountain."], k=k.title)
    return [section("Name", name), section("Climate", clim),
            section("Huts", wikitable(f"Mountain huts on {m.title}", ["Hut", "Height", "Beds"], huts)),
            section("In culture", culture)]


def river_extra(w: World, r: Entity, rng: random.Random) -> list[str]:
    k = r.kingdom
    name = (f"The name {r.name} comes from the [[{k.language.title}]] word {tpl('lang', k.language.code, r.name.lower())}, "
            f"meaning \"{r.meaning}\".")
    nav = pick(rng, ["The river is navigable for {n} km upstream from its mouth.",
                     "Barges can reach [[{c}]] in spring, when the water is high.",
                     "Rapids above [[{c}]] stop all boats; goods are carried around them by cart."],
               n=max(10, r.length // 2), c=(r.cities[0].title if r.cities else r.source.title))
    fish = pick(rng, ["Pike, trout and eels are caught in the lower river.",
                      "Fishing rights on the river belong to the towns along its banks.",
                      "The spring run of fish draws anglers from across the kingdom."])
    floods = [[y, conv(rng.randint(3, 9), "m")] for y in sorted(rng.sample(range(1100, 1499), 3))]
    return [section("Name", name), section("Navigation", nav + " " + fish),
            section("Floods", "The highest recorded floods were:\n\n" + wikitable(f"Floods of the {r.title}", ["Year", "Height"], floods))]


FAMILY = [
    "{Poss} family had lived in [[{city}]] for several generations.",
    "{Poss} father died when {pr} was young, and {pr} was raised by an uncle.",
    "{Pr} was the youngest of {n} children.",
    "The family moved to the {district} district when {pr} was a child.",
]
LATER = [
    "In {poss} last years {pr} returned to [[{city}]] and lived quietly.",
    "{Pr} continued to work until a few months before {poss} death.",
    "Illness forced {obj} to give up {poss} work after {y}.",
    "{Pr} spent {poss} final years teaching younger {occ}s.",
]
RECEPTION = [
    "Contemporaries admired {poss} energy more than {poss} results.",
    "{Poss} reputation grew after {poss} death, when {poss} papers were published.",
    "Some later writers criticised {obj} as old-fashioned.",
    "{Pr} is remembered in the {k} as a model of honest work.",
]


def person_extra(w: World, p: Entity, rng: random.Random, facts: dict) -> list[str]:
    f = dict(facts, n=rng.randint(2, 9), district=rng.choice(DISTRICTS), y=p.died - rng.randint(1, 6))
    fam = " ".join(e.format(**f) for e in rng.sample(FAMILY, 2))
    later = " ".join(e.format(**f) for e in rng.sample(LATER, 2)) + f" {facts['Pr']} died in [[{p.death_city.title}]] in {p.died}."
    rec = " ".join(e.format(**f) for e in rng.sample(RECEPTION, 2))
    return [section("Family", fam), section("Later years and death", later), section("Reception", rec)]


def kingdom_extra(w: World, k: Entity, rng: random.Random) -> list[str]:
    mil = pick(rng, ["The royal army has about {n} soldiers in peacetime.",
                     "Every town must keep {n} armed men ready for the king's call.",
                     "The kingdom keeps a small army of about {n} and a fleet on the {sea}."],
               n=num(rng.randint(20, 90) * 100), sea=w.waters[w.kingdoms.index(k) % 3].title)
    sym = (f"The flag of the kingdom is {k.colour} with a white {k.emblem.name}. The [[{k.emblem.title}|{k.emblem.name}]] "
           f"is the national animal.")
    unis = [u for u in w.universities if u.kingdom is k]
    edu = ("The kingdom's places of learning include " + and_list([u.link() for u in unis]) + "." if unis else
           "The kingdom has no university; its students travel to the academies of its neighbours.")
    edu += " The Royal Society of Letters &amp; Sciences meets in the capital."
    return [section("Military", mil), section("Symbols", sym), section("Education", edu)]


# --------------------------------------------------------------------------------------------
# Non-English articles, disambiguation pages, redirects, other namespaces, planted duplicates
# --------------------------------------------------------------------------------------------


def vary(rng: random.Random, options: list[str], count: int, **facts: object) -> str:
    """`count` distinct sentences out of `options`: keeps same-template articles from looking like near-duplicates."""
    return " ".join(o.format(**facts) for o in rng.sample(options, count))


DE_EXTRA = ["Die Stadtmauer wurde später erweitert, und die Brücke gehört zu den ältesten Bauwerken der Region.",
            "Die Winter sind kalt und schneereich, die Sommer kurz und warm.",
            "Im Herbst feiern die Bewohner ein großes Fest mit Musik, Tanz und Speisen aus der Region.",
            "Jeden Samstag findet auf dem Marktplatz ein großer Wochenmarkt statt.",
            "Bekannt ist die Stadt für ihre alten Fachwerkhäuser und den Turm am Markt.",
            "Die Altstadt steht seit {y} unter dem Schutz des Königs.", "Der Fluss {w} trat im Jahr {y} über die Ufer.",
            "Die wichtigste Kirche der Stadt wurde {y} geweiht.", "Von {m} kommt im Frühling das Schmelzwasser.",
            "Die Partnerstadt ist {t}.", "Die Händler der Stadt handeln vor allem mit {i}.",
            "Ein großer Brand zerstörte {y} das Rathaus.", "In der Stadt leben viele Familien von {i2}.",
            "Im Winter ist der Weg nach {o} oft wegen Schnee gesperrt.", "Das Stadtwappen zeigt einen Turm über Wellen."]
FR_EXTRA = ["Les remparts furent agrandis à plusieurs reprises.", "Le vieux pont de pierre témoigne de la prospérité de l'époque.",
            "Une grande foire s'y tient chaque automne.", "Le climat est doux et humide, avec des étés frais.",
            "La ville est connue pour ses maisons anciennes et son marché couvert.",
            "Le marché hebdomadaire attire des marchands de tout le royaume.",
            "La vieille ville est protégée par le roi depuis {y}.", "La rivière {w} déborda en {y}.",
            "La principale église fut consacrée en {y}.", "Le mont {m} domine la vallée au nord.",
            "La ville est jumelée avec {t}.", "Les marchands vendent surtout des produits de {i}.",
            "Un grand incendie détruisit l'hôtel de ville en {y}.", "Beaucoup de familles vivent de {i2}.",
            "En hiver, la route vers {o} est souvent fermée par la neige.", "Les armoiries montrent une tour au-dessus des vagues."]
EL_EXTRA = ["Τα τείχη της επεκτάθηκαν πολλές φορές.", "Η παλιά πέτρινη γέφυρα σώζεται ακόμη.",
            "Κάθε φθινόπωρο γίνεται μεγάλο πανηγύρι.", "Οι χειμώνες είναι κρύοι και τα καλοκαίρια σύντομα.",
            "Η οικονομία βασίζεται στο εμπόριο και στην υφαντική.", "Κάθε Σάββατο γίνεται αγορά στην κεντρική πλατεία.",
            "Η παλιά πόλη προστατεύεται από το {y}.", "Ο ποταμός πλημμύρισε το {y}.",
            "Η κύρια εκκλησία χτίστηκε το {y}.", "Το βουνό {m} φαίνεται από την αγορά.",
            "Η πόλη είναι αδελφοποιημένη με την {t}.", "Μια μεγάλη φωτιά κατέστρεψε το δημαρχείο το {y}.",
            "Πολλές οικογένειες ζουν από το ψάρεμα.", "Τον χειμώνα ο δρόμος προς την {o} κλείνει συχνά από το χιόνι."]
JA_EXTRA = ["城壁は何度も拡張された。", "古い石橋は今も残っている。", "毎年秋には大きな祭りが開かれる。",
            "冬は寒く雪が多く、夏は短く暖かい。", "主な産業は交易と織物である。", "毎週土曜日には中央広場で市が開かれる。",
            "旧市街は{y}年から王の保護を受けている。", "{y}年に川が氾濫し、下町が水につかった。",
            "町の主な寺院は{y}年に建てられた。", "北には{m}がそびえている。", "姉妹都市は{t}である。",
            "{y}年の大火で市庁舎が焼けた。", "多くの家族が漁業で暮らしている。", "冬には{o}への道が雪で閉ざされることが多い。",
            "町の紋章は波の上の塔である。", "春には山から雪どけ水が流れてくる。"]


def foreign_facts(c: Entity, rng: random.Random, render: Callable[[Entity], str]) -> dict:
    k = c.kingdom
    others = [o for o in k.cities if o is not c]
    return dict(y=rng.randint(c.founded + 10, 1499), w=(c.river or c.water).name, m=render(c.mountain),
                t=render(c.twin), i=c.industries[0], i2=c.industries[1], o=render(others[len(c.title) % len(others)]))


def german_city(w: World, c: Entity) -> tuple[str, str]:
    k = c.kingdom
    rng = article_rng("de", c.title)
    extra = vary(rng, DE_EXTRA, 6, **foreign_facts(c, rng, lambda e: e.title))
    water = f"am Fluss [[{c.river.title}|{c.river.name}]]" if c.river else f"am Ufer des Sees [[{c.water.title}|{c.water.name}]]"
    text = join_paras(
        infobox("Ort", [("Name", c.title), ("Staat", f"[[{k.title}|Königreich {k.name}]]"),
                        ("Einwohner", num(c.population).replace(",", ".")), ("Höhe", f"{c.elevation}&nbsp;m")]),
        f"'''{c.title}''' ist eine Stadt im Königreich {k.name} {water}. Sie hat "
        f"{num(c.population).replace(',', '.')} Einwohner und wurde im Jahr {c.founded} gegründet."
        + (" Sie ist die Hauptstadt des Königreichs." if c.capital else ""),
        section("Geschichte", f"Die Stadt wurde {c.founded} als Marktort gegründet. Im {century(c.founded + 150).replace('th century', '.')}"
                              f" Jahrhundert wuchs sie durch den Handel mit {c.industries[0]} stark an."),
        section("Geographie", f"Die Stadt liegt auf einer Höhe von {c.elevation}{NBSP}m. Der Berg [[{c.mountain.title}]] "
                              f"ist etwa {c.mountain_km}&nbsp;km entfernt."),
        section("Kultur", f"Die Stadt liegt {distance_km(c, k.capital) if c is not k.capital else 0}&nbsp;km von der Hauptstadt entfernt."),
        section("Wirtschaft", f"Wichtige Wirtschaftszweige sind {c.industries[0]}, {c.industries[1]} und "
                              f"{c.industries[2]}."),
        section("Verschiedenes", extra),
        section("Einzelnachweise", "<references />"),
        f"[[Kategorie:Stadt im Königreich {k.name}]]\n\n[[en:{c.title}]]\n[[fr:{c.title}]]")
    return f"{c.title} (Stadt)", text


def french_city(w: World, c: Entity) -> tuple[str, str]:
    k = c.kingdom
    rng = article_rng("fr", c.title)
    extra = vary(rng, FR_EXTRA, 6, **foreign_facts(c, rng, lambda e: e.title))
    water = f"sur la rivière [[{c.river.title}|{c.river.name}]]" if c.river else f"au bord du lac [[{c.water.title}|{c.water.name}]]"
    pop = num(c.population).replace(",", NBSP)
    text = join_paras(
        infobox("Ville", [("nom", c.title), ("pays", f"[[{k.title}|Royaume de {k.name}]]"), ("population", pop)]),
        f"'''{c.title}''' est une ville du royaume de {k.name}, {water}. Elle compte {pop} habitants "
        f"et a &#233;t&#233; fond&#233;e en {c.founded}." + (" C'est la capitale du royaume." if c.capital else ""),
        section("Histoire", f"Fondée en {c.founded}, la ville devint rapidement un centre de commerce."),
        section("Géographie", f"La ville est située à {c.elevation}{NBSP}m d'altitude. Le mont [[{c.mountain.title}]] "
                              f"se trouve à environ {c.mountain_km}&nbsp;km."),
        section("Économie", f"L'économie repose sur {c.industries[0]}, {c.industries[1]} et {c.industries[2]}."),
        section("Divers", extra),
        section("Références", tpl("Références")),
        f"[[Catégorie:Ville du royaume de {k.name}]]\n\n[[en:{c.title}]]\n[[de:{c.title} (Stadt)]]")
    return f"{c.title} (ville)", text


def greek_city(w: World, c: Entity) -> tuple[str, str]:
    k = c.kingdom
    rng = article_rng("el", c.title)
    extra = vary(rng, EL_EXTRA, 6, **foreign_facts(c, rng, lambda e: (e.nm.greek if hasattr(e, "nm") else e.title)))
    name, kname = c.nm.greek, k.nm.greek
    text = join_paras(
        f"Η '''{name}''' είναι πόλη του Βασιλείου {kname}. Έχει {num(c.population).replace(',', '.')} κατοίκους "
        f"και ιδρύθηκε το {c.founded}." + (" Είναι η πρωτεύουσα του βασιλείου." if c.capital else ""),
        section("Ιστορία", f"Η πόλη ιδρύθηκε το {c.founded} ως αγορά δίπλα στο ποτάμι."),
        section("Γεωγραφία", f"Η πόλη βρίσκεται σε υψόμετρο {c.elevation}{NBSP}μ."),
        section("Διάφορα", extra),
        f"[[Κατηγορία:Πόλεις του Βασιλείου {kname}]]\n\n[[en:{c.title}]]")
    return name, text


def japanese_city(w: World, c: Entity) -> tuple[str, str]:
    k = c.kingdom
    rng = article_rng("ja", c.title)
    extra = "".join(rng.sample(JA_EXTRA, 7)).format(**foreign_facts(c, rng, lambda e: (e.nm.katakana if hasattr(e, "nm") else e.title)))
    name, kname = c.nm.katakana, k.nm.katakana
    text = join_paras(
        f"'''{name}'''は、{kname}王国の都市である。人口は{num(c.population)}人で、{c.founded}年に建設された。"
        + ("王国の首都である。" if c.capital else ""),
        section("歴史", f"{c.founded}年、川のほとりの市場町として建設された。"),
        section("地理", f"標高{c.elevation}{NBSP}メートルの台地に位置する。"),
        section("その他", extra),
        f"[[Category:{kname}王国の都市]]\n\n[[en:{c.title}]]")
    return name, text


def disambiguation(w: World, i: int) -> tuple[str, str]:
    c = w.cities[10 + i]
    r = w.rivers[i]
    people = [p for p in w.people if p.surname == c.title]
    lines = [f"'''{c.title}''' may refer to:", "",
             f"* [[{c.title}]], {article_a('city' if c.population >= 20000 else 'town')} in the [[{c.kingdom.title}]]",
             f"* [[{r.title}]], a river in the [[{r.kingdom.title}]]"]
    if people:
        lines += ["", "== People ==", bullets(f"{p.link()} ({span(p.born, p.died)}), {p.kingdom.adj} {p.occupation}"
                                             for p in people)]
    lines += ["", "== See also ==", f"* {tpl('lookfrom', c.title)}", f"* {tpl('intitle', c.title)}", "",
              tpl("disambiguation"), "", f"[[Category:Place name disambiguation pages]]"]
    return f"{c.title} (disambiguation)", "\n".join(lines) + "\n"


def redirects(w: World) -> list[tuple[str, str]]:
    """(title, target): alternative spellings and short forms, ~30 of them."""
    out = []
    for c in w.cities[:8]:
        out.append((f"{c.title} City", c.title))
    for k in w.kingdoms[:6]:
        out.append((f"{k.adj} Kingdom", k.title))
    for r in w.rivers[5:11]:
        out.append((f"{r.name} river", r.title))
    for m in [m for m in w.mountains if m.title.startswith("Mount ")][:4]:
        out.append((f"Mt. {m.name}", m.title))
    for p in w.people[20:24]:
        out.append((f"{p.given[0]}. {p.surname}", p.title))
    out.append((f"{w.sky['moon1'].name} moon", w.sky["moon1"].title))
    out.append((f"History of {w.cities[0].title}", f"{w.cities[0].title}#History"))
    out.append((f"{w.languages[0].name}", w.languages[0].title))
    return out


def redirect_text(title: str, target: str, i: int) -> str:
    word = ["#REDIRECT", "#redirect", "#REDIRECT:", "#Redirect"][i % 4]
    cat = "\n\n{{R from alternative name}}" if i % 3 == 0 else ""
    return f"{word} [[{target}]]{cat}\n"


def other_namespace_pages(w: World) -> list[tuple[str, int, str]]:
    c0, k0 = w.cities[0], w.kingdoms[0]
    out = []
    for k in w.kingdoms:
        out.append((f"Category:Cities in the {k.title}", 14,
                    f"Cities and towns in the [[{k.title}]].\n\n[[Category:{k.title}]]\n[[Category:Cities by kingdom]]\n"))
    out.append(("Category:Kingdoms of " + str(w.continent), 14, f"The eight kingdoms of [[{w.continent}]].\n"))
    out += [
        ("Template:Infobox settlement", 10,
         "{| class=\"infobox\"\n|+ {{{name}}}\n|-\n! Population\n| {{{population_total|}}}\n|}"
         "<noinclude>\n{{documentation}}\n[[Category:Infobox templates]]\n</noinclude>\n"),
        ("Template:Convert", 10, "<includeonly>{{{1}}}&nbsp;{{{2}}}</includeonly><noinclude>\n"
                                 "Converts a value between units: <code><nowiki>{{convert|5|km}}</nowiki></code>.\n</noinclude>\n"),
        ("Template:Disambiguation", 10, "''This page lists articles with similar titles.''<noinclude>\n"
                                        "[[Category:Disambiguation message boxes]]\n</noinclude>\n"),
        ("Template:Reflist", 10, "<references />\n"),
        (f"Talk:{c0.title}", 1, f"== Population figure ==\nThe census of {c0.census} gives {num(c0.population)}. "
                                f"[[User:Archivist|Archivist]] 12:00, 1 May 2024 (UTC)\n:Agreed. "
                                f"[[User:Cartographer|Cartographer]] 13:10, 1 May 2024 (UTC)\n"),
        (f"Talk:{w.rivers[0].title}", 1, "== Length ==\nIs the length measured from the source spring or from the "
                                         "glacier? [[User:RiverWalker|RiverWalker]] 09:00, 2 May 2024 (UTC)\n"),
        (f"Talk:{k0.title}", 1, "{{WikiProject Kingdoms|class=B}}\n== Rulers table ==\nThe table lists only some "
                                "rulers. [[User:Lanternkeeper|Lanternkeeper]] 10:30, 3 May 2024 (UTC)\n"),
        (f"{SITENAME}:About", 4, f"'''{SITENAME}''' is an invented encyclopedia of the continent of {w.continent}, "
                                 "generated for testing a text pipeline.\n"),
        (f"{SITENAME}:Manual of style", 4, "== Leads ==\nEvery article starts with the bold title and a short "
                                           "definition.\n== Units ==\nUse {{tl|convert}} for lengths and heights.\n"),
        (f"File:{c0.title} skyline.jpg", 6, f"== Summary ==\n{{{{Information|description=Skyline of [[{c0.title}]]"
                                            f"|source=own work|author=[[User:Archivist|Archivist]]}}}}\n"
                                            "== Licensing ==\n{{self|cc-by-sa-4.0}}\n"),
        (f"File:{w.animals[0].title} drawing.png", 6, "== Summary ==\nA drawing.\n== Licensing ==\n{{PD-old}}\n"),
        ("User:Archivist", 2, "I write about the cities of the continent.\n"),
        ("Portal:Geography", 100, f"Welcome to the geography portal of [[{w.continent}]].\n"),
        ("Module:Convert", 828, "-- converts units\nlocal p = {}\nfunction p.convert(frame) return frame.args[1] end\nreturn p\n"),
    ]
    return out


REDIRECT_LIKE = "Forwarding Stone of {city}"


def redirect_like_article(w: World) -> tuple[str, str]:
    """Text that opens like a German redirect but is a real article (no <redirect> element)."""
    c = w.cities[6]
    title = REDIRECT_LIKE.format(city=c.title)
    text = (f"#WEITERLEITUNG [[{c.title}]]\n\n"
            f"'''{title}''' is a carved milestone in [[{c.title}]] that marks the start of the post road to the coast. "
            f"The words ''Weiterleitung {c.title}'' (\"forwarding to {c.title}\") were cut into it by a merchant "
            f"from the south, and the stone gave its name to the custom of forwarding letters between towns.\n\n"
            f"== History ==\nThe stone was set up in {c.founded + 120} by the guild of messengers. Travellers touch it "
            f"for luck before a long journey. It stands {conv(2, 'm')} high and is made of {c.mountain.rock}.\n\n"
            f"[[Category:Monuments in {c.title}]]\n")
    return title, text


def empty_after_cleaning(w: World) -> list[tuple[str, str]]:
    c, r = w.cities[1], w.rivers[2]
    return [
        (f"{c.title} Cathedral", infobox("building", [("name", f"{c.title} Cathedral"), ("location", c.link()),
                                                       ("completion_date", c.founded + 200)]) +
         "\n{{stub}}\n\n[[Category:Buildings in " + c.title + "]]\n[[de:Dom von " + c.title + "]]\n"),
        (f"{r.name} Bridge", "{{Use dmy dates}}\n__NOTOC__\n" + tpl("coord", 45, 12, "N", 9, 3, "E") +
         "\n<!-- article to be written -->\n[[Category:Bridges over the " + r.title + "]]\n"),
    ]


NEAR_DUP_EDITS = [("city", "town"), (" is known for ", " is famous for "), ("founded", "established"),
                  (" large ", " big "), ("rises on", "springs from"), ("about", "roughly"), ("feeds", "lives"),
                  ("travelled", "went"), ("The ", "The old "), (" main ", " principal ")]


def near_duplicate(text: str, rng: random.Random) -> str:
    """A light edit: a few word substitutions, one sentence dropped, one sentence added."""
    for old, new in rng.sample(NEAR_DUP_EDITS, 4):
        i = text.find(old, len(text) // 4)  # keep the lead and the infobox as they are
        if i >= 0:
            text = text[:i] + new + text[i + len(old):]
    sentences = text.split(". ")
    # drop one plain prose sentence near the middle (never a chunk that spans lines, lists or tables)
    candidates = [i for i, x in enumerate(sentences) if 20 < len(x) < 200 and "\n" not in x and "<" not in x]
    if candidates:
        del sentences[min(candidates, key=lambda i: (abs(i - len(sentences) // 2), i))]
    text = ". ".join(sentences)
    marker = "\n== See also =="
    add = "\nThis account follows the older survey of the region."
    j = text.find(marker)
    return text[:j] + add + text[j:] if j >= 0 else text + add


# --------------------------------------------------------------------------------------------
# Assembling the pages
# --------------------------------------------------------------------------------------------


@dataclass
class Page:
    title: str
    ns: int
    text: str
    redirect: str | None = None
    kind: str = "article"  # article | redirect | other_ns | disambiguation | non_english | exact_dup | near_dup | empty | redirect_like
    id: int = 0


WRITERS: dict[str, Callable[[World, Entity], str]] = {
    "kingdom": kingdom_article, "language": language_article, "range": range_article,
    "mountain": mountain_article, "water": water_article, "city": city_article, "river": river_article,
    "person": person_article, "book": book_article, "animal": animal_article, "food": food_article,
    "festival": festival_article, "treaty": treaty_article, "university": university_article,
    "instrument": instrument_article, "sky": sky_article, "law": law_article, "unit": unit_article,
}


def build_pages(seed: int = SEED) -> list[Page]:
    w = World(seed)
    rng = random.Random(seed + 1)
    articles = [Page(str(w.continent), 0, continent_article(w), kind="continent")]
    articles += [Page(e.title, 0, WRITERS[e.etype](w, e), kind=e.etype) for e in w.subjects()]
    specials: list[Page] = []
    for i, c in enumerate(w.cities[20:30]):
        make = [german_city, german_city, german_city, french_city, french_city, french_city,
                greek_city, greek_city, japanese_city, japanese_city][i]
        title, text = make(w, c)
        specials.append(Page(title, 0, text, kind="non_english"))
    specials += [Page(t, 0, x, kind="disambiguation") for t, x in (disambiguation(w, i) for i in range(5))]
    specials += [Page(t, 0, x, kind="empty") for t, x in empty_after_cleaning(w)]
    t, x = redirect_like_article(w)
    specials.append(Page(t, 0, x, kind="redirect_like"))
    specials += [Page(t, ns, x, kind="other_ns") for t, ns, x in other_namespace_pages(w)]
    redirect_pages = [Page(t, 0, redirect_text(t, target, i), redirect=target.split("#")[0], kind="redirect")
                      for i, (t, target) in enumerate(redirects(w))]

    # Planted duplicates: same text (or a light edit) under a different title, placed after the original.
    by_kind: dict[str, list[Page]] = {}
    for p in articles:
        by_kind.setdefault(p.kind, []).append(p)
    sources = [p for kind in ("city", "person", "animal", "food", "river", "festival", "mountain")
               for p in by_kind[kind][:4]]
    rng.shuffle(sources)
    dup_word = {"city": "settlement", "person": "biography", "animal": "species", "food": "dish",
                "river": "watercourse", "festival": "celebration", "mountain": "peak"}
    exact = [Page(f"{p.title} ({dup_word[p.kind]})", 0, p.text, kind="exact_dup") for p in sources[:10]]
    near = [Page(f"{p.title} ({dup_word[p.kind]} article)", 0, near_duplicate(p.text, random.Random(f"{seed}:near:{p.title}")),
                 kind="near_dup") for p in sources[10:25]]

    pages = articles + specials + redirect_pages
    rng.shuffle(pages)
    for dup, src in zip(exact + near, sources[:25]):
        pos = pages.index(src)
        pages.insert(rng.randint(pos + 1, len(pages)), dup)
    next_id = 10
    for p in pages:
        p.id = next_id
        next_id += rng.randint(1, 4)
    titles = [p.title for p in pages]
    assert len(set(titles)) == len(titles), "duplicate page titles"
    return pages


# --------------------------------------------------------------------------------------------
# Serialisation: XML pages, multistream bz2, index
# --------------------------------------------------------------------------------------------


def xml_escape(s: str, quote: bool = False) -> str:
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace('"', "&quot;") if quote else s


def sha1_base36(text: str) -> str:
    """MediaWiki's revision hash: SHA-1 of the UTF-8 text, base 36, zero-padded to 31 digits."""
    n = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(31, "0")


def siteinfo_xml() -> str:
    ns_lines = []
    for key, name in NAMESPACES:
        case = "case-sensitive" if key in (828, 829) else "first-letter"
        ns_lines.append(f'      <namespace key="{key}" case="{case}" />' if not name
                        else f'      <namespace key="{key}" case="{case}">{xml_escape(name)}</namespace>')
    return (f'<mediawiki xmlns="{EXPORT_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="{EXPORT_NS} http://www.mediawiki.org/xml/export-0.11.xsd" version="0.11" xml:lang="en">\n'
            "  <siteinfo>\n"
            f"    <sitename>{SITENAME}</sitename>\n"
            "    <dbname>samplewiki</dbname>\n"
            "    <base>http://example.org/wiki/Main_Page</base>\n"
            "    <generator>MediaWiki 1.42.0-wmf.1</generator>\n"
            "    <case>first-letter</case>\n"
            "    <namespaces>\n" + "\n".join(ns_lines) + "\n    </namespaces>\n"
            "  </siteinfo>\n")


def page_xml(p: Page, rev_id: int) -> str:
    user, uid = CONTRIBUTORS[p.id % len(CONTRIBUTORS)]
    sha = sha1_base36(p.text)
    redirect = f'    <redirect title="{xml_escape(p.redirect, quote=True)}" />\n' if p.redirect else ""
    return ("  <page>\n"
            f"    <title>{xml_escape(p.title)}</title>\n"
            f"    <ns>{p.ns}</ns>\n"
            f"    <id>{p.id}</id>\n"
            f"{redirect}"
            "    <revision>\n"
            f"      <id>{rev_id}</id>\n"
            f"      <parentid>{rev_id - 7}</parentid>\n"
            f"      <timestamp>{TIMESTAMP}</timestamp>\n"
            "      <contributor>\n"
            f"        <username>{user}</username>\n"
            f"        <id>{uid}</id>\n"
            "      </contributor>\n"
            "      <comment>generated by wikigpt make-sample</comment>\n"
            f"      <origin>{rev_id}</origin>\n"
            "      <model>wikitext</model>\n"
            "      <format>text/x-wiki</format>\n"
            f'      <text bytes="{len(p.text.encode("utf-8"))}" sha1="{sha} " xml:space="preserve">'.replace(f'{sha} "', f'{sha}"')
            + f"{xml_escape(p.text, quote=True)}</text>\n"
            f"      <sha1>{sha}</sha1>\n"
            "    </revision>\n"
            "  </page>\n")


def render(pages: list[Page], pages_per_stream: int = PAGES_PER_STREAM) -> tuple[bytes, bytes]:
    """(multistream dump, index), both bz2-compressed."""
    streams = [bz2.compress(siteinfo_xml().encode("utf-8"), 9)]
    offset = len(streams[0])
    index_lines = []
    rev_id = 1000
    for start in range(0, len(pages), pages_per_stream):
        chunk = pages[start:start + pages_per_stream]
        xml = []
        for p in chunk:
            rev_id += 13
            xml.append(page_xml(p, rev_id))
            index_lines.append(f"{offset}:{p.id}:{p.title}\n")
        data = bz2.compress("".join(xml).encode("utf-8"), 9)
        streams.append(data)
        offset += len(data)
    streams.append(bz2.compress(b"</mediawiki>\n", 9))
    return b"".join(streams), bz2.compress("".join(index_lines).encode("utf-8"), 9)


def write_sample(out_dir: str | Path = DEFAULT_OUT, seed: int = SEED) -> dict[str, int]:
    """Generate the dump and its index into `out_dir`; returns page counts by kind."""
    out = Path(out_dir)
    pages = build_pages(seed)
    dump, index = render(pages)
    with atomic_file(out / DUMP_NAME) as f:
        f.write(dump)
    with atomic_file(out / INDEX_NAME) as f:
        f.write(index)
    for name in (DUMP_NAME, INDEX_NAME):
        (out / name).chmod(0o644)  # mkstemp creates 0600; these are ordinary shared data files
    return count_kinds(pages)


def count_kinds(pages: list[Page]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in pages:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    return dict(sorted(counts.items()))


def cli(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="wikigpt make-sample", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="output directory (default: data/sample)")
    args = ap.parse_args(argv)
    counts = write_sample(args.out)
    total = sum(counts.values())
    print(f"wrote {Path(args.out) / DUMP_NAME} and its index: {total} pages")
    for kind, n in counts.items():
        print(f"  {kind:<16} {n}")
    return 0
