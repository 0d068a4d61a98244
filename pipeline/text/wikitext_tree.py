"""A light node tree of wikitext, built from mwparserfromhell's token stream.

`mwparserfromhell.parse` is its C tokenizer followed by a pure-Python builder that wraps every
node list in a `Wikicode` and `SmartList` and re-parses each tag's name through
`parse_anything`; on real articles that builder took four times the tokenizer's CPU time.
`pipeline/text/wikitext.py` only reads the tree, so it is built here as plain slotted objects,
in one pass over the tokens:

- a node list is a `Code` (a list), and a text node is the `str` itself;
- every node has the fields the renderer reads, plus what `str()` needs to give back the exact
  source of the node (`str(parse(text)) == text`, as with mwparserfromhell's nodes): template
  names, link titles and the bodies of `<math>` or `<nowiki>` are read as typed.

The tree has the shape mwparserfromhell's builder gives the same tokens: the same node
boundaries (adjacent text tokens are not merged), the same attribute and parameter splits, a
tag's `contents` an empty `Code` where it has none. A tag's contents are built when first read
(see `Tag`).
"""

from __future__ import annotations

import html.entities
from collections.abc import Iterator

from mwparserfromhell.parser import CTokenizer, tokens as tk
from mwparserfromhell.parser.tokenizer import Tokenizer

# The C tokenizer where mwparserfromhell was built with it, as its own parser chooses; the
# Python one gives the same tokens, slower.
TOKENIZER = CTokenizer if CTokenizer is not None else Tokenizer

Token = tk.Token


class Code(list):
    """A node list: `str` text nodes and the node objects below, in source order."""

    __slots__ = ()

    def __str__(self) -> str:
        if len(self) == 1 and type(self[0]) is str:  # a link's title, a name: no join for the usual lone text
            return self[0]
        return "".join(map(str, self))


class Template:
    __slots__ = ("name", "params")

    def __init__(self, name: Code, params: list[Parameter]) -> None:
        self.name = name
        self.params = params

    def __str__(self) -> str:
        if self.params:
            return "{{" + str(self.name) + "|" + "|".join(map(str, self.params)) + "}}"
        return "{{" + str(self.name) + "}}"


class Parameter:
    __slots__ = ("key", "value", "showkey")

    def __init__(self, key: Code | None, value: Code, showkey: bool) -> None:
        self.key = key  # None for a positional parameter (its number is not needed here)
        self.value = value
        self.showkey = showkey

    def __str__(self) -> str:
        return str(self.key) + "=" + str(self.value) if self.showkey else str(self.value)


class Argument:
    __slots__ = ("name", "default")

    def __init__(self, name: Code, default: Code | None) -> None:
        self.name = name
        self.default = default

    def __str__(self) -> str:
        if self.default is not None:
            return "{{{" + str(self.name) + "|" + str(self.default) + "}}}"
        return "{{{" + str(self.name) + "}}}"


class Wikilink:
    __slots__ = ("title", "text")

    def __init__(self, title: Code, text: Code | None) -> None:
        self.title = title
        self.text = text

    def __str__(self) -> str:
        if self.text is not None:
            return "[[" + str(self.title) + "|" + str(self.text) + "]]"
        return "[[" + str(self.title) + "]]"


class ExternalLink:
    __slots__ = ("url", "title", "brackets", "suppress_space")

    def __init__(self, url: Code, title: Code | None, brackets: bool, suppress_space: bool) -> None:
        self.url = url
        self.title = title
        self.brackets = brackets
        self.suppress_space = suppress_space

    def __str__(self) -> str:
        if not self.brackets:
            return str(self.url)
        if self.title is None:
            return "[" + str(self.url) + "]"
        return "[" + str(self.url) + ("" if self.suppress_space else " ") + str(self.title) + "]"


class HTMLEntity:
    __slots__ = ("value", "named", "hexadecimal", "hex_char")

    def __init__(self, value: str, named: bool, hexadecimal: bool, hex_char: str) -> None:
        self.value = value
        self.named = named
        self.hexadecimal = hexadecimal
        self.hex_char = hex_char

    def __str__(self) -> str:
        if self.named:
            return f"&{self.value};"
        if self.hexadecimal:
            return f"&#{self.hex_char}{self.value};"
        return f"&#{self.value};"

    def normalize(self) -> str:
        """The character the entity stands for (the tokenizer only makes entities that have one)."""
        if self.named:
            return chr(html.entities.name2codepoint[self.value])
        return chr(int(self.value, 16 if self.hexadecimal else 10))


class Heading:
    __slots__ = ("title", "level")

    def __init__(self, title: Code, level: int) -> None:
        self.title = title
        self.level = level

    def __str__(self) -> str:
        return "=" * self.level + str(self.title) + "=" * self.level


class Comment:
    __slots__ = ("contents",)

    def __init__(self, contents: str) -> None:
        self.contents = contents

    def __str__(self) -> str:
        return "<!--" + self.contents + "-->"


class Attribute:
    """A tag's attribute, kept only to give the tag's source back."""

    __slots__ = ("name", "value", "quotes", "pad_first", "pad_before_eq", "pad_after_eq")

    def __init__(self, name: Code, value: Code | None, quotes: str | None, start: Token) -> None:
        self.name = name
        self.value = value
        self.quotes = quotes
        self.pad_first = start.get("pad_first") or ""
        self.pad_before_eq = start.get("pad_before_eq") or ""
        self.pad_after_eq = start.get("pad_after_eq") or ""

    def __str__(self) -> str:
        head = self.pad_first + str(self.name) + self.pad_before_eq
        if self.value is None:
            return head
        quotes = self.quotes or ""
        return head + "=" + self.pad_after_eq + quotes + str(self.value) + quotes


class Tag:
    """An HTML or extension tag, or wiki markup the tokenizer reads as one (`*` list items,
    `{|` tables, `----`): then `wiki_markup` is that markup and `tag` the HTML name.

    Its contents are built when first read: half the tokens of a real article are in tables
    and refs, which the cleaner drops unread unless a heading is in them (`may_hold_heading`).
    """

    __slots__ = ("tag", "_contents", "_content_tokens", "may_hold_heading", "attributes", "wiki_markup",
                 "self_closing", "invalid", "implicit", "padding", "closing_tag", "wiki_style_separator",
                 "closing_wiki_markup")

    def __init__(self, tag: Code, content_tokens: list[Token] | None, attributes: list[Attribute], opening: Token,
                 closing: Token, padding: str, closing_tag: Code, wiki_style_separator: str | None,
                 closing_wiki_markup: str | None) -> None:
        self.tag = tag
        self._contents: Code | None = None if content_tokens else Code()
        self._content_tokens = content_tokens
        self.may_hold_heading = bool(content_tokens) and tk.HeadingStart in map(type, content_tokens)
        self.attributes = attributes
        self.wiki_markup = opening.get("wiki_markup") or None
        self.invalid = opening.get("invalid") or False
        self.self_closing = type(closing) is tk.TagCloseSelfclose
        self.implicit = (closing.get("implicit") or False) if self.self_closing else False
        self.padding = padding
        self.closing_tag = closing_tag
        self.wiki_style_separator = wiki_style_separator
        self.closing_wiki_markup = closing_wiki_markup

    @property
    def contents(self) -> Code:
        if self._contents is None:
            self._contents = _Builder(self._content_tokens).build()  # type: ignore[arg-type]
            self._content_tokens = None
        return self._contents

    def __str__(self) -> str:
        attributes = "".join(map(str, self.attributes))
        if self.wiki_markup:
            head = self.wiki_markup + attributes + self.padding + (self.wiki_style_separator or "")
            if self.self_closing:
                return head
            return head + str(self.contents) + (self.closing_wiki_markup or "")
        head = ("</" if self.invalid else "<") + str(self.tag) + attributes + self.padding
        if self.self_closing:
            return head + (">" if self.implicit else "/>")
        return head + ">" + str(self.contents) + "</" + str(self.closing_tag) + ">"


Node = str | Template | Argument | Wikilink | ExternalLink | HTMLEntity | Heading | Comment | Tag


def parse(text: str) -> Code:
    """The node tree of `text`, with `''` and `'''` read as text (`skip_style_tags`)."""
    return _Builder(TOKENIZER().tokenize(text, 0, True)).build()


class BrokenTokens(ValueError):
    """The token stream does not nest (a tokenizer bug): the article cannot be read."""


TEXT = tk.Text
TEMPLATE_PARTS = (tk.TemplateParamSeparator, tk.TemplateClose)
PARAMETER_PARTS = (tk.TemplateParamEquals, tk.TemplateParamSeparator, tk.TemplateClose)
ARGUMENT_PARTS = (tk.ArgumentSeparator, tk.ArgumentClose)
WIKILINK_PARTS = (tk.WikilinkSeparator, tk.WikilinkClose)
EXTERNAL_LINK_PARTS = (tk.ExternalLinkSeparator, tk.ExternalLinkClose)
ATTRIBUTE_PARTS = (tk.TagAttrEquals, tk.TagAttrQuote, tk.TagAttrStart, tk.TagCloseOpen, tk.TagCloseSelfclose)
TAG_OPEN, TAG_CONTENTS_END = tk.TagOpenOpen, tk.TagOpenClose
TAG_CLOSE, TAG_SELF_CLOSE = tk.TagCloseClose, tk.TagCloseSelfclose
TAG_PARTS = (tk.TagAttrStart, tk.TagCloseOpen, tk.TagOpenClose, tk.TagCloseSelfclose, tk.TagCloseClose)


class _Builder:
    """One pass over the tokens: each construct reads its parts up to its closing token. The
    tree of a long article has hundreds of thousands of nodes, so the loops stay lean."""

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens: Iterator[Token] = iter(tokens)
        self._openers = {
            tk.TemplateOpen: self._template, tk.ArgumentOpen: self._argument, tk.WikilinkOpen: self._wikilink,
            tk.ExternalLinkOpen: self._external_link, tk.HTMLEntityStart: self._entity,
            tk.HeadingStart: self._heading, tk.CommentStart: self._comment, tk.TagOpenOpen: self._tag,
        }

    def build(self) -> Code:
        code = Code()
        end = self._collect(code)
        if end is not None:
            raise BrokenTokens(f"unexpected {type(end).__name__} at the top level")
        return code

    def _collect(self, into: Code) -> Token | None:
        """Nodes into `into` up to the first token that is no node's start: that token is
        returned (None at the end of the stream)."""
        opener_of = self._openers.get
        append = into.append
        for token in self._tokens:
            kind = type(token)
            if kind is TEXT:
                append(token["text"])
                continue
            opener = opener_of(kind)
            if opener is None:
                return token
            append(opener(token))
        return None

    def _expect(self, into: Code, kinds: tuple[type, ...]) -> Token:
        end = self._collect(into)
        if type(end) not in kinds:
            found = "the end" if end is None else type(end).__name__
            raise BrokenTokens(f"expected {' or '.join(k.__name__ for k in kinds)}, found {found}")
        return end  # type: ignore[return-value]

    def _template(self, _: Token) -> Template:
        name = Code()
        end = self._expect(name, TEMPLATE_PARTS)
        params: list[Parameter] = []
        while type(end) is tk.TemplateParamSeparator:
            key, value = None, Code()
            end = self._expect(value, PARAMETER_PARTS)
            while type(end) is tk.TemplateParamEquals:
                key, value = value, Code()
                end = self._expect(value, PARAMETER_PARTS)
            params.append(Parameter(key, value, key is not None))
        return Template(name, params)

    def _argument(self, _: Token) -> Argument:
        name = Code()
        end = self._expect(name, ARGUMENT_PARTS)
        default = None
        while type(end) is tk.ArgumentSeparator:
            if default is not None:
                name = default
            default = Code()
            end = self._expect(default, ARGUMENT_PARTS)
        return Argument(name, default)

    def _wikilink(self, _: Token) -> Wikilink:
        title = Code()
        end = self._expect(title, WIKILINK_PARTS)
        text = None
        while type(end) is tk.WikilinkSeparator:
            if text is not None:
                title = text
            text = Code()
            end = self._expect(text, WIKILINK_PARTS)
        return Wikilink(title, text)

    def _external_link(self, opening: Token) -> ExternalLink:
        url = Code()
        end = self._expect(url, EXTERNAL_LINK_PARTS)
        title, suppress_space = None, False
        while type(end) is tk.ExternalLinkSeparator:
            if title is not None:
                url = title
            suppress_space = end.get("suppress_space") is True
            title = Code()
            end = self._expect(title, EXTERNAL_LINK_PARTS)
        return ExternalLink(url, title, bool(opening.get("brackets")), suppress_space)

    def _entity(self, _: Token) -> HTMLEntity:
        token = next(self._tokens)
        if type(token) is tk.HTMLEntityNumeric:
            token = next(self._tokens)
            if type(token) is tk.HTMLEntityHex:
                value = next(self._tokens)["text"]
                next(self._tokens)  # HTMLEntityEnd
                return HTMLEntity(value, named=False, hexadecimal=True, hex_char=token.get("char"))
            next(self._tokens)
            return HTMLEntity(token["text"], named=False, hexadecimal=False, hex_char="x")
        next(self._tokens)
        return HTMLEntity(token["text"], named=True, hexadecimal=False, hex_char="x")

    def _heading(self, opening: Token) -> Heading:
        title = Code()
        self._expect(title, (tk.HeadingEnd,))
        return Heading(title, opening["level"])

    def _comment(self, _: Token) -> Comment:
        contents = Code()
        self._expect(contents, (tk.CommentEnd,))
        return Comment(str(contents))

    def _attribute(self, start: Token) -> tuple[Attribute, Token]:
        """One attribute, and the token after it (the next attribute's start or the tag's
        closing), which the tag goes on with."""
        name: Code | None = None
        part, quotes = Code(), None
        while True:
            end = self._expect(part, ATTRIBUTE_PARTS)
            kind = type(end)
            if kind is tk.TagAttrEquals:
                name, part = part, Code()
            elif kind is tk.TagAttrQuote:
                quotes = end.get("char")
            elif name is not None and str(name):
                return Attribute(name, part, quotes, start), end
            else:  # no name before the `=`: what followed it is the name, with no value
                return Attribute(part, None, quotes, start), end

    def _tag(self, opening: Token) -> Tag:
        attributes: list[Attribute] = []
        part = Code()
        tag: Code | None = None
        content_tokens: list[Token] | None = None
        padding, separator = "", None
        closing_markup = opening.get("wiki_markup")
        end = self._expect(part, TAG_PARTS)
        while True:
            kind = type(end)
            if kind is tk.TagAttrStart:
                attribute, end = self._attribute(end)
                attributes.append(attribute)
                continue
            if kind is tk.TagCloseOpen:
                separator, padding = end.get("wiki_markup"), end.get("padding") or ""
                tag, part = part, Code()
                content_tokens, end = self._content_tokens()
                continue
            if kind is tk.TagOpenClose:
                closing_markup = end.get("wiki_markup")
                if content_tokens is None:  # contents without an opening tag's end: not from the tokenizer
                    raise BrokenTokens("a tag's contents started before its name ended")
            elif kind is tk.TagCloseSelfclose:
                closing_markup = end.get("wiki_markup")
                return Tag(part, None, attributes, opening, end, end.get("padding") or "", part, separator,
                           _closing_markup(opening, closing_markup))
            elif tag is not None:  # TagCloseClose
                return Tag(tag, content_tokens, attributes, opening, end, padding, part, separator,
                           _closing_markup(opening, closing_markup))
            else:
                raise BrokenTokens("a tag closed before its name ended")
            end = self._expect(part, TAG_PARTS)

    def _content_tokens(self) -> tuple[list[Token], Token]:
        """The tokens of a tag's contents, unbuilt, and the `TagOpenClose` that ends them: the
        first one outside the tags nested in them."""
        contents: list[Token] = []
        append = contents.append
        depth = 0
        for token in self._tokens:
            kind = type(token)
            if kind is TAG_OPEN:
                depth += 1
            elif kind is TAG_CLOSE or kind is TAG_SELF_CLOSE:
                depth -= 1
            elif kind is TAG_CONTENTS_END and depth == 0:
                return contents, token
            append(token)
        raise BrokenTokens("a tag's contents never end")


def _closing_markup(opening: Token, closing: str | None) -> str | None:
    """What closes a wiki-markup tag: the closing token's markup when it gives one (an empty
    one closes with nothing), else the opening markup."""
    if closing is None:
        return opening.get("wiki_markup") or None
    return closing or None
