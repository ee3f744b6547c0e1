"""adl.py — a strict parser of MEDM display files, written from ../shared/docs/adl.md (sections
3, 5-7, 10 and 14). Stricter than MEDM: anything MEDM would take silently but guardiand must
never write is an error. parse(text) returns the display as nested Block objects or raises
AdlError naming the line.

Checked while parsing: header order (file, display, "color map" with exactly MEDM's 65 default
colours, each followed by a comma), version 030122, known blocks and keys only (each at most
once, `object` first in an object), enumerated values spelled exactly, colours 0-64, strings of
printable ASCII without '"' and at most 255 characters, unquoted words without '{', '}' or '$',
every `}` after white space, numbers in numeric fields.
"""
import re

DEFAULT_COLORS = [
    "ffffff", "ececec", "dadada", "c8c8c8", "bbbbbb", "aeaeae", "9e9e9e", "919191", "858585",
    "787878", "696969", "5a5a5a", "464646", "2d2d2d", "000000", "00d800", "1ebb00", "339900",
    "2d7f00", "216c00", "fd0000", "de1309", "be190b", "a01207", "820400", "5893ff", "597ee1",
    "4b6ec7", "3a5eab", "27548d", "fbf34a", "f9da3c", "eeb62b", "e19015", "cd6100", "ffb0ff",
    "d67fe2", "ae4ebc", "8b1a96", "610a75", "a4aaff", "8793e2", "6a73c1", "4d52a4", "343386",
    "c7bb6d", "b79d5c", "a47e3c", "7d5627", "58340f", "99ffff", "73dfff", "4ea5f9", "2a63e4",
    "0a00b8", "ebf1b5", "d4db9d", "bbc187", "a6a462", "8b8239", "73ff6b", "52da3b", "3cb420",
    "289315", "1a7309",
]

CLRMOD = {"static", "alarm", "discrete"}
VIS = {"static", "if not zero", "if zero", "calc"}
ALIGN = {"horiz. left", "horiz. centered", "horiz. right"}
FORMAT = {"decimal", "exponential", "engr. notation", "compact", "truncated", "hexadecimal",
          "octal", "string", "sexagesimal", "sexagesimal-hms", "sexagesimal-dms"}
SRC = {"channel", "default"}
STACKING = {"row", "column", "row column"}
VISUAL = {"menu", "a row of buttons", "a column of buttons", "invisible"}
LABEL = {"none", "no decorations", "outline", "limits", "channel"}

# Field kinds: "int", "pos" (> 0), "color", "str" (quoted), a set (quoted enum), "block:<name>".
OBJECT = {"x": "int", "y": "int", "width": "pos", "height": "pos"}
MONITOR = {"chan": "str", "clr": "color", "bclr": "color"}
BASIC = {"clr": "color", "style": {"solid", "dash"}, "fill": {"solid", "outline"},
         "width": "int"}
DYNAMIC = {"clr": CLRMOD, "vis": VIS, "calc": "str", "chan": "str", "chanB": "str",
           "chanC": "str", "chanD": "str"}
LIMITS = {"loprSrc": SRC, "loprDefault": "num", "hoprSrc": SRC, "hoprDefault": "num",
          "precSrc": SRC, "precDefault": "int"}
RD_ENTRY = {"label": "str", "name": "str", "args": "str", "policy": {"replace display"}}

SUBBLOCKS = {"object": OBJECT, "monitor": MONITOR, "control": MONITOR,
             "basic attribute": BASIC, "dynamic attribute": DYNAMIC, "limits": LIMITS}

OBJECTS = {
    "text": ({"object", "basic attribute", "dynamic attribute"},
             {"textix": "str", "align": ALIGN}, {"object", "basic attribute", "textix"}),
    "rectangle": ({"object", "basic attribute", "dynamic attribute"}, {},
                  {"object", "basic attribute"}),
    "oval": ({"object", "basic attribute", "dynamic attribute"}, {},
             {"object", "basic attribute"}),
    "text update": ({"object", "monitor", "limits"},
                    {"clrmod": CLRMOD, "align": ALIGN, "format": FORMAT},
                    {"object", "monitor", "limits"}),
    "text entry": ({"object", "control", "limits"}, {"clrmod": CLRMOD, "format": FORMAT},
                   {"object", "control", "limits"}),
    "menu": ({"object", "control"}, {"clrmod": CLRMOD}, {"object", "control"}),
    "choice button": ({"object", "control"}, {"clrmod": CLRMOD, "stacking": STACKING},
                      {"object", "control"}),
    "message button": ({"object", "control"},
                       {"label": "str", "press_msg": "str", "release_msg": "str",
                        "clrmod": CLRMOD}, {"object", "control", "label"}),
    "related display": ({"object"}, {"clr": "color", "bclr": "color", "label": "str",
                                     "visual": VISUAL}, {"object", "clr", "bclr"}),
    # Not written by guardiand, but part of the format (adl.md 7.3, 7.11-7.14).
    "polyline": ({"object", "basic attribute", "dynamic attribute", "points"}, {},
                 {"object", "basic attribute", "points"}),
    "byte": ({"object", "monitor"}, {"clrmod": CLRMOD, "direction": {"right", "down"},
                                     "sbit": "int", "ebit": "int"},
             {"object", "monitor", "sbit", "ebit"}),
    "bar": ({"object", "monitor", "limits"},
            {"label": LABEL, "clrmod": CLRMOD, "direction": {"up", "right", "down", "left"},
             "fillmod": {"from edge", "from center"}}, {"object", "monitor", "limits"}),
    "indicator": ({"object", "monitor", "limits"},
                  {"label": LABEL, "clrmod": CLRMOD, "direction": {"up", "right"}},
                  {"object", "monitor", "limits"}),
    "composite": ({"object", "children", "dynamic attribute"},
                  {"composite name": "str", "composite file": "str"},
                  {"object", "composite name"}),
}

# Heights adl.md section 10 recommends, per object type (font from the height).
HEIGHTS = {"text": {10, 13, 14, 15, 16, 20, 24}, "text update": {10, 13, 14, 15, 16, 20, 24},
           "text entry": {20, 22, 24}, "message button": {20, 22, 24},
           "related display": {20, 22, 24}, "menu": {22, 24}, "choice button": {18, 20}}

QUOTED_RE = re.compile(r'"([^"]*)"')


class AdlError(Exception):
    pass


class Block:
    def __init__(self, name, line):
        self.name, self.line = name, line
        self.fields = {}   # key -> value (str)
        self.blocks = []   # sub-blocks in order (Block)
        self.order = []    # keys and block names in file order

    def block(self, name):
        found = [b for b in self.blocks if b.name == name]
        return found[0] if found else None

    def box(self):
        o = self.block("object")
        return tuple(int(o.fields[k]) for k in ("x", "y", "width", "height"))

    def __repr__(self):
        return "Block(%s@%d)" % (self.name, self.line)


def tokenize(text):
    """(kind, value, line): kind is 'word', 'quoted', '=', '{', '}'. adl.md 3.1."""
    if any(ord(c) > 126 or (ord(c) < 32 and c not in "\t\n\r") for c in text):
        raise AdlError("a byte that is not printable ASCII")
    tokens, i, line, n = [], 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c in "={}":
            if c == "}" and i > 0 and text[i - 1] not in " \t\r\n":
                raise AdlError("line %d: '}' without white space before it" % line)
            tokens.append((c, c, line))
            i += 1
        elif c in "(,)":
            tokens.append(("word", c, line))
            i += 1
        elif c == '"':
            j = text.find('"', i + 1)
            if j < 0:
                raise AdlError("line %d: unterminated string" % line)
            value = text[i + 1:j]
            if "\n" in value:
                raise AdlError("line %d: a string holds a newline" % line)
            if len(value) > 255:
                raise AdlError("line %d: a string of %d characters" % (line, len(value)))
            tokens.append(("quoted", value, line))
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in ' \t\r\n=(,)"':
                j += 1
            word = text[i:j]
            if any(ch in word for ch in "{}$"):
                raise AdlError("line %d: unquoted word %r" % (line, word))
            tokens.append(("word", word, line))
            i = j
    return tokens


class Parser:
    def __init__(self, text):
        self.t = tokenize(text)
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else ("eof", "", -1)

    def take(self, kind=None, value=None):
        tok = self.peek()
        if tok[0] == "eof":
            raise AdlError("unexpected end of file")
        if (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            raise AdlError("line %d: expected %s, got %r" % (tok[2], value or kind, tok[1]))
        self.i += 1
        return tok

    def keyword(self):
        kind, value, line = self.take()
        if kind not in ("word", "quoted"):
            raise AdlError("line %d: expected a keyword, got %r" % (line, value))
        return value, line

    def value(self, kind, key, line):
        tok = self.take()
        if tok[0] not in ("word", "quoted"):
            raise AdlError("line %d: no value for %s" % (line, key))
        v = tok[1]
        if isinstance(kind, set):
            if tok[0] != "quoted" or v not in kind:
                raise AdlError("line %d: %s=%r is not one of %s" % (line, key, v, sorted(kind)))
        elif kind == "str":
            if tok[0] != "quoted":
                raise AdlError("line %d: %s must be quoted" % (line, key))
        else:
            if tok[0] != "word" or not re.fullmatch(r"-?\d+(\.\d+)?" if kind == "num"
                                                    else r"-?\d+", v):
                raise AdlError("line %d: %s=%r is not a number" % (line, key, v))
            if kind == "pos" and int(v) <= 0:
                raise AdlError("line %d: %s=%s must be positive" % (line, key, v))
            if kind == "color" and not 0 <= int(v) <= 64:
                raise AdlError("line %d: colour %s out of 0-64" % (line, v))
        return v

    def block(self, name, line, fields, subs=(), required=(), entries=False):
        """A block after its keyword: { key=value | sub { ... } }."""
        b = Block(name, line)
        self.take("{")
        while self.peek()[0] != "}":
            key, kline = self.keyword()
            if key in b.order:
                raise AdlError("line %d: %s twice in %s" % (kline, key, name))
            if self.peek()[0] == "=":
                self.take("=")
                if key not in fields:
                    raise AdlError("line %d: unknown key %s in %s" % (kline, key, name))
                b.fields[key] = self.value(fields[key], key, kline)
            elif entries and re.fullmatch(r"display\[\d+\]", key):
                b.blocks.append(self.block(key, kline, RD_ENTRY, required=("label", "name")))
            elif key == "points" and key in subs:
                b.blocks.append(self.points(kline))
            elif key == "children" and key in subs:
                b.blocks.append(self.children(kline))
            elif key in subs and key in SUBBLOCKS:
                b.blocks.append(self.block(key, kline, SUBBLOCKS[key]))
            else:
                raise AdlError("line %d: unknown block %s in %s" % (kline, key, name))
            b.order.append(key)
        self.take("}")
        missing = [k for k in required if k not in b.order]
        if missing:
            raise AdlError("line %d: %s lacks %s" % (line, name, ", ".join(missing)))
        return b


def _points(self, line):
    """points { (x,y) ... }"""
    b = Block("points", line)
    self.take("{")
    while self.peek()[0] != "}":
        self.take("word", "(")
        x = self.value("int", "x", line)
        self.take("word", ",")
        y = self.value("int", "y", line)
        self.take("word", ")")
        b.fields.setdefault("points", []).append((int(x), int(y)))
    self.take("}")
    return b


def _children(self, line):
    """children { objects }"""
    b = Block("children", line)
    self.take("{")
    while self.peek()[0] != "}":
        b.blocks.append(self.element())
    self.take("}")
    return b


def _element(self):
    name, line = self.keyword()
    if name not in OBJECTS:
        raise AdlError("line %d: unknown object %r" % (line, name))
    subs, fields, required = OBJECTS[name]
    b = self.block(name, line, fields, subs, required, entries=name == "related display")
    if b.order[0] != "object":
        raise AdlError("line %d: %s does not start with its object" % (line, name))
    if name == "composite" and ("children" in b.order) == ("composite file" in b.order):
        raise AdlError("line %d: a composite needs children or a composite file" % line)
    return b


Parser.points, Parser.children, Parser.element = _points, _children, _element


def parse(text):
    """The display: {'file': Block, 'display': Block, 'objects': [Block]}."""
    p = Parser(text)
    name, line = p.keyword()
    if name != "file":
        raise AdlError("the first block is not file")
    f = p.block("file", line, {"name": "str", "version": "int"}, required=("name", "version"))
    if f.fields["version"] != "030122":
        raise AdlError("version %s, expected 030122" % f.fields["version"])
    name, line = p.keyword()
    if name != "display":
        raise AdlError("the second block is not display")
    d = p.block("display", line, {"clr": "color", "bclr": "color", "cmap": "str",
                                  "gridSpacing": "int", "gridOn": "int", "snapToGrid": "int"},
                subs=("object",), required=("object", "clr", "bclr", "cmap", "gridSpacing",
                                            "gridOn", "snapToGrid"))
    name, line = p.keyword()
    if name != "color map":
        raise AdlError("line %d: the third block is not \"color map\"" % line)
    p.take("{")
    p.take("word", "ncolors")
    p.take("=")
    p.take("word", "65")
    p.take("word", "colors")
    p.take("{")
    colors = []
    while p.peek()[0] != "}":
        c = p.take("word")[1]
        p.take("word", ",")
        colors.append(c)
    p.take("}")
    p.take("}")
    if colors != DEFAULT_COLORS:
        raise AdlError("the colour map is not MEDM's default map")
    objects = []
    while p.peek()[0] != "eof":
        objects.append(p.element())
    return {"file": f, "display": d, "objects": objects}


# ---- checks beyond the grammar (adl.md 14.3) ----

WIDGETS = {"text", "text update", "text entry", "menu", "choice button", "message button",
           "related display"}


def expand(s, macros):
    """$(NAME) replaced from macros; an undefined one left as it is (MEDM's rule)."""
    return re.sub(r"\$\(([^)]*)\)", lambda m: macros.get(m.group(1), m.group(0)), s)


def check_geometry(doc):
    """Every object inside the display; no two texts or widgets overlap; heights that pick a
    readable font. An invisible related display is a click area drawn under what covers it
    (adl.md 7.9): it may lie under a text, and shows no font. Returns a list of problems."""
    problems = []
    dw, dh = (int(doc["display"].block("object").fields[k]) for k in ("width", "height"))
    placed = []
    for b in doc["objects"]:
        x, y, w, h = b.box()
        if x < 0 or y < 0 or x + w > dw or y + h > dh:
            problems.append("%s at line %d lies outside the %dx%d display" % (b.name, b.line,
                                                                             dw, dh))
        if b.fields.get("visual") == "invisible":
            continue
        if b.name in HEIGHTS and h not in HEIGHTS[b.name]:
            problems.append("%s at line %d: height %d picks no recommended font" % (b.name,
                                                                                   b.line, h))
        if b.name in WIDGETS:
            for other in placed:
                ox, oy, ow, oh = other.box()
                if x < ox + ow and ox < x + w and y < oy + oh and oy < y + h:
                    problems.append("%s at line %d overlaps %s at line %d" % (
                        b.name, b.line, other.name, other.line))
            placed.append(b)
    return problems


def channels(doc, macros):
    """Every channel named, after macro expansion: [(name, object Block, role)] where role is
    'monitor', 'control' or 'dynamic'."""
    out = []
    for b in doc["objects"]:
        for role in ("monitor", "control", "dynamic attribute"):
            sub = b.block(role)
            if sub is not None:
                for key in ("chan", "chanB", "chanC", "chanD"):
                    if key in sub.fields:
                        out.append((expand(sub.fields[key], macros), b, role))
    return out


def links(doc, macros):
    """Every related display entry, expanded: [(file, {macro: value})]."""
    out = []
    for b in doc["objects"]:
        if b.name != "related display":
            continue
        entries = [e for e in b.blocks if e.name.startswith("display[")]
        for k, e in enumerate(entries):
            if e.name != "display[%d]" % k:
                raise AdlError("line %d: related display entries not contiguous" % e.line)
            args = expand(e.fields.get("args", ""), macros)
            pairs = {}
            if args:
                for part in args.split(","):
                    m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=([^,\s]+)", part)
                    if not m or len(m.group(1)) >= 80 or len(m.group(2)) >= 80:
                        raise AdlError("line %d: bad args %r" % (e.line, args))
                    pairs[m.group(1)] = m.group(2)
            out.append((expand(e.fields["name"], macros), pairs))
    return out
