"""jinja_mini - the small subset of Jinja that toyota2mqtt's discovery
templates use, evaluated the way Home Assistant's MQTT templates would.

    render(template, value, **variables) -> str

`value` is the MQTT payload (text); `value_json` is its JSON, when it parses
(Home Assistant's render_with_possible_json_value); extra variables (e.g.
`code` for a lock's command_template) may be given. The result is stripped,
as Home Assistant strips it.

Grammar (anything else raises TemplateSyntaxError, so a template outside it
is caught by the tests rather than silently "supported"):

    template   := ( text | "{{" expr "}}" )*          no {% %} or {# #}
    expr       := or_expr [ "if" or_expr "else" expr ]
    or_expr    := and_expr ( "or" and_expr )*
    and_expr   := not_expr ( "and" not_expr )*
    not_expr   := "not" not_expr | comparison
    comparison := filtered [ ( "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in" ) filtered ]
                | filtered "is" [ "not" ] ( "defined" | "none" | "string" | "number" )
    filtered   := postfix ( "|" FILTER [ "(" args ")" ] )*
                  FILTER in tojson, length, default, string, int, float, lower
    postfix    := atom ( "." NAME | ".get(" expr [ "," expr ] ")" | "[" expr "]" | "[" [expr] ":" [expr] "]" )*
    atom       := NAME | STRING | NUMBER | true | false | none | True | False | None
                | "(" expr ")" | "[" [ expr ( "," expr )* ] "]" | "{" [ expr ":" expr ( "," ... )* ] "}"

Reading something undefined (a missing key through ".", an unknown
variable) raises TemplateUndefined: that is the case where Home Assistant
logs a template warning, which the discovery templates must never cause.
`x is defined` tests without raising; `default` replaces an undefined value.
"""

import json
import re

__all__ = ["render", "parse", "TemplateSyntaxError", "TemplateUndefined", "TemplateError"]


class TemplateError(Exception):
    pass


class TemplateSyntaxError(TemplateError):
    pass


class TemplateUndefined(TemplateError):
    pass


class _Undefined:
    """Jinja's Undefined: falsy, and an error as soon as it is used."""

    def __init__(self, what):
        self.what = what

    def fail(self):
        raise TemplateUndefined(self.what)


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+\.\d+|\d+)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|[<>()\[\]{}.,:|])
""", re.VERBOSE)

_FILTERS = {"tojson", "length", "default", "string", "int", "float", "lower"}
_TESTS = {"defined", "none", "string", "number"}


def _tokens(src):
    pos, out = 0, []
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise TemplateSyntaxError("unexpected %r in %r" % (src[pos:pos + 10], src))
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        out.append((kind, m.group()))
    out.append(("end", ""))
    return out


def _unquote(s):
    body = s[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


class _Parser:
    """Recursive descent over the token list into nested tuples (an AST)."""

    def __init__(self, src):
        self.src = src
        self.toks = _tokens(src)
        self.i = 0

    def peek(self, k=0):
        return self.toks[self.i + k]

    def take(self, value=None, kind=None):
        t = self.toks[self.i]
        if (value is not None and t[1] != value) or (kind is not None and t[0] != kind):
            raise TemplateSyntaxError("expected %r at %r in %r" % (value or kind, t[1], self.src))
        self.i += 1
        return t

    def accept(self, value):
        if self.peek()[1] == value and self.peek()[0] in ("op", "name"):
            self.i += 1
            return True
        return False

    def parse(self):
        e = self.expr()
        if self.peek()[0] != "end":
            raise TemplateSyntaxError("trailing %r in %r" % (self.peek()[1], self.src))
        return e

    def expr(self):
        a = self.or_expr()
        if self.accept("if"):
            cond = self.or_expr()
            self.take("else")
            b = self.expr()
            return ("if", cond, a, b)
        return a

    def or_expr(self):
        a = self.and_expr()
        while self.accept("or"):
            a = ("or", a, self.and_expr())
        return a

    def and_expr(self):
        a = self.not_expr()
        while self.accept("and"):
            a = ("and", a, self.not_expr())
        return a

    def not_expr(self):
        if self.peek() == ("name", "not"):
            self.i += 1
            return ("not", self.not_expr())
        return self.comparison()

    def comparison(self):
        a = self.filtered()
        t = self.peek()
        if t[1] in ("==", "!=", "<", "<=", ">", ">=") and t[0] == "op":
            self.i += 1
            return ("cmp", t[1], a, self.filtered())
        if t == ("name", "in"):
            self.i += 1
            return ("cmp", "in", a, self.filtered())
        if t == ("name", "not") and self.peek(1) == ("name", "in"):
            self.i += 2
            return ("cmp", "not in", a, self.filtered())
        if t == ("name", "is"):
            self.i += 1
            neg = self.accept("not")
            test = self.take(kind="name")[1]
            if test not in _TESTS:
                raise TemplateSyntaxError("unsupported test %r in %r" % (test, self.src))
            return ("test", test, neg, a)
        return a

    def filtered(self):
        a = self.postfix()
        while self.accept("|"):
            name = self.take(kind="name")[1]
            if name not in _FILTERS:
                raise TemplateSyntaxError("unsupported filter %r in %r" % (name, self.src))
            args = []
            if self.accept("("):
                if not self.accept(")"):
                    args.append(self.expr())
                    while self.accept(","):
                        args.append(self.expr())
                    self.take(")")
            a = ("filter", name, a, args)
        return a

    def postfix(self):
        a = self.atom()
        while True:
            if self.accept("."):
                name = self.take(kind="name")[1]
                if name == "get" and self.peek()[1] == "(":
                    self.take("(")
                    key = self.expr()
                    default = ("lit", None)
                    if self.accept(","):
                        default = self.expr()
                    self.take(")")
                    a = ("get", a, key, default)
                else:
                    a = ("attr", a, name)
            elif self.accept("["):
                lo = hi = None
                if self.peek()[1] != ":":
                    lo = self.expr()
                if self.accept(":"):
                    if self.peek()[1] != "]":
                        hi = self.expr()
                    self.take("]")
                    a = ("slice", a, lo, hi)
                else:
                    self.take("]")
                    a = ("item", a, lo)
            else:
                return a

    def atom(self):
        kind, text = self.take()
        if kind == "num":
            return ("lit", float(text) if "." in text else int(text))
        if kind == "str":
            return ("lit", _unquote(text))
        if kind == "name":
            consts = {"true": True, "True": True, "false": False, "False": False,
                      "none": None, "None": None}
            if text in consts:
                return ("lit", consts[text])
            if text in ("if", "else", "and", "or", "not", "in", "is"):
                raise TemplateSyntaxError("unexpected %r in %r" % (text, self.src))
            return ("var", text)
        if text == "(":
            e = self.expr()
            self.take(")")
            return e
        if text == "[":
            items = []
            if not self.accept("]"):
                items.append(self.expr())
                while self.accept(","):
                    items.append(self.expr())
                self.take("]")
            return ("list", items)
        if text == "{":
            pairs = []
            if not self.accept("}"):
                while True:
                    k = self.expr()
                    self.take(":")
                    pairs.append((k, self.expr()))
                    if not self.accept(","):
                        break
                self.take("}")
            return ("dict", pairs)
        raise TemplateSyntaxError("unexpected %r in %r" % (text, self.src))


def _split(template):
    """Text and expression parts of a template."""
    if "{%" in template or "{#" in template:
        raise TemplateSyntaxError("statements and comments are outside the subset: %r" % template)
    parts, pos = [], 0
    while True:
        start = template.find("{{", pos)
        if start < 0:
            parts.append(("text", template[pos:]))
            return parts
        end = template.find("}}", start + 2)
        # "}}" may close a dict literal inside the expression: take the
        # first "}}" after which the braces balance.
        while end >= 0 and template.count("{", start + 2, end) > template.count("}", start + 2, end):
            end = template.find("}}", end + 1)
        if end < 0:
            raise TemplateSyntaxError("unclosed {{ in %r" % template)
        parts.append(("text", template[pos:start]))
        parts.append(("expr", _Parser(template[start + 2:end]).parse()))
        pos = end + 2


def parse(template):
    """Parses a template (raising TemplateSyntaxError outside the subset)."""
    return _split(template)


def _use(v):
    if isinstance(v, _Undefined):
        v.fail()
    return v


def _ev(node, env):
    op = node[0]
    if op == "lit":
        return node[1]
    if op == "var":
        return env[node[1]] if node[1] in env else _Undefined("'%s' is undefined" % node[1])
    if op == "list":
        return [_use(_ev(x, env)) for x in node[1]]
    if op == "dict":
        return {_use(_ev(k, env)): _use(_ev(v, env)) for k, v in node[1]}
    if op == "if":
        return _ev(node[2], env) if _truthy(_ev(node[1], env)) else _ev(node[3], env)
    if op == "or":
        a = _ev(node[1], env)
        return a if _truthy(a) else _ev(node[2], env)
    if op == "and":
        a = _ev(node[1], env)
        return _ev(node[2], env) if _truthy(a) else a
    if op == "not":
        return not _truthy(_ev(node[1], env))
    if op == "cmp":
        a, b = _use(_ev(node[2], env)), _use(_ev(node[3], env))
        o = node[1]
        try:
            if o == "==": return a == b
            if o == "!=": return a != b
            if o == "<": return a < b
            if o == "<=": return a <= b
            if o == ">": return a > b
            if o == ">=": return a >= b
            if o == "in": return a in b
            return a not in b
        except TypeError as ex:
            raise TemplateError("%s: %s" % (o, ex))
    if op == "test":
        v = _ev(node[3], env)
        name = node[1]
        if name == "defined":
            r = not isinstance(v, _Undefined)
        else:
            v = _use(v)
            r = {"none": v is None, "string": isinstance(v, str),
                 "number": isinstance(v, (int, float)) and not isinstance(v, bool)}[name]
        return not r if node[2] else r
    if op == "get":
        obj = _use(_ev(node[1], env))
        if not isinstance(obj, dict):
            raise TemplateError("%r has no get()" % (obj,))
        return obj.get(_use(_ev(node[2], env)), _use(_ev(node[3], env)))
    if op == "attr":
        obj = _use(_ev(node[1], env))
        if isinstance(obj, dict) and node[2] in obj:
            return obj[node[2]]
        return _Undefined("%r has no attribute '%s'" % (type(obj).__name__, node[2]))
    if op == "item":
        obj = _use(_ev(node[1], env))
        key = _use(_ev(node[2], env))
        try:
            return obj[key]
        except (KeyError, IndexError, TypeError):
            return _Undefined("no item %r" % (key,))
    if op == "slice":
        obj = _use(_ev(node[1], env))
        lo = None if node[2] is None else _use(_ev(node[2], env))
        hi = None if node[3] is None else _use(_ev(node[3], env))
        if not isinstance(obj, (str, list)):
            raise TemplateError("cannot slice %r" % (obj,))
        return obj[lo:hi]
    if op == "filter":
        return _filter(node[1], _ev(node[2], env), [_use(_ev(a, env)) for a in node[3]])
    raise TemplateError("bad node %r" % (node,))


def _truthy(v):
    return bool(_use(v)) if not isinstance(v, _Undefined) else False


def _filter(name, v, args):
    if name == "default":
        return (args[0] if args else "") if isinstance(v, _Undefined) else v
    v = _use(v)
    if name == "tojson":
        # Jinja's htmlsafe_json_dumps with the default sort_keys policy.
        s = json.dumps(v, sort_keys=True)
        return (s.replace("<", "\\u003c").replace(">", "\\u003e")
                 .replace("&", "\\u0026").replace("'", "\\u0027"))
    if name == "length":
        return len(v)
    if name == "string":
        return _str(v)
    if name == "int":
        try:
            return int(float(v))
        except (TypeError, ValueError):
            return args[0] if args else 0
    if name == "float":
        try:
            return float(v)
        except (TypeError, ValueError):
            return args[0] if args else 0.0
    if name == "lower":
        return _str(v).lower()
    raise TemplateError("unsupported filter %s" % name)


def _str(v):
    """What {{ v }} prints: Python's str()."""
    return str(v)


def render(template, value, **variables):
    """Renders template as Home Assistant renders an MQTT value template
    against payload value (str). Raises TemplateError subclasses."""
    env = {"value": value}
    try:
        env["value_json"] = json.loads(value)
    except (TypeError, ValueError):
        pass
    env.update(variables)
    out = []
    for kind, part in _split(template):
        out.append(part if kind == "text" else _str(_use(_ev(part, env))))
    return "".join(out).strip()


if __name__ == "__main__":
    # Self-test (not run by the suite): python3 tests/integration/jinja_mini.py
    st = json.dumps({"doorStatus": {"frontLeft": "open"}, "windowStatus": None, "doorsLocked": True,
                     "title": "x" * 300, "n": 3})
    cases = [
        ("{{ value_json.get('n') }}", "3"),
        ("{{ value_json.get('missing') }}", "None"),
        ("{{ {'open': 'ON', 'closed': 'OFF'}.get((value_json.get('doorStatus') or {}).get('frontLeft'), 'None') }}", "ON"),
        ("{{ {'open': 'ON'}.get((value_json.get('windowStatus') or {}).get('frontLeft'), 'None') }}", "None"),
        ("{{ {true: 'LOCKED', false: 'UNLOCKED'}.get(value_json.get('doorsLocked'), 'None') }}", "LOCKED"),
        ("{{ value_json.get('title')[:255] if value_json.get('title') is string else None }}", "x" * 255),
        ("{{ (value_json.get('nope') or '')[:255] or None }}", "None"),
        ("{{ {'b': 1, 'a': [1, 2]} | tojson }}", '{"a": [1, 2], "b": 1}'),
        ("{{ 'off' if not value_json.get('n') else 'on' }}", "on"),
        ("{{ value_json.get('n') in [1, 2, 3] }}", "True"),
        ("{{ value_json.nope is defined }}", "False"),
        ("{{ value_json.nope | default('d') }}", "d"),
        ('{"action":"{{ value }}","code":{{ code | tojson }}}', '{"action":"LOCK","code":null}'),
    ]
    for tpl, want in cases:
        got = render(tpl, "LOCK" if "action" in tpl else st, code=None)
        assert got == want, (tpl, got, want)
    for bad in ["{{ value_json.nope }}", "{{ x }}"]:
        try:
            render(bad, st)
            raise AssertionError("no error for " + bad)
        except TemplateUndefined:
            pass
    for bad in ["{% if x %}{% endif %}", "{{ value | round(2) }}", "{{ now() }}", "{{ 1 + 2 }}"]:
        try:
            parse(bad)
            raise AssertionError("parsed " + bad)
        except TemplateSyntaxError:
            pass
    print("jinja_mini self-test ok")
