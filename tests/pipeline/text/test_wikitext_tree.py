"""The light wikitext tree: the tree mwparserfromhell's own builder makes of the same text, node
for node and field for field, with the exact source of every node; a tag's contents built only
when read."""

from __future__ import annotations

import bz2

import mwparserfromhell
import pytest
from lxml import etree
from mwparserfromhell import nodes as mw

from pipeline.text import wikitext_tree as tree
from pipeline.text.wikitext_tree import Code, Tag, Template, Wikilink, parse
from tests.sources.wikipedia_dumps import REAL_WIKIPEDIA

# One of each construct the tokenizer knows, with the shapes that split them oddly: a parameter
# with two `=`, a link with two `|`, an attribute named by nothing, quotes, padding, wiki-markup
# tags with and without their closing markup, entities of the three kinds.
CONSTRUCTS = [
    "plain text, no markup",
    "{{Infobox | name = Alder | 42 km | a=b=c }}",
    "{{{arg}}} {{{arg|default}}} {{{a|b|c}}}",
    "[[Target]] [[Target|text]] [[a|b|c]] [[:fr:Paris]] [[File:x.jpg|thumb|A [[cap]]]]",
    "[http://example.org label] [http://example.org] http://bare.example.org [//proto.example/x y]",
    "&nbsp; &#65; &#x4A; &amp; &foo;",
    "== Heading ==\ntext\n=== Sub ===\n",
    "a<!-- hidden -->b",
    '<ref name="a">x</ref><ref name=b/><ref group = \'n\' >y</ref ><br><br/><BR />',
    "<span =x>a</span><div style=\"a b\" id=c>d</div></div>",
    "<math>\\alpha^2</math> <nowiki>[[not]] &amp;</nowiki> <pre>x {{y}}</pre>",
    "* one\n** two\n# three\n; term : def\n----\n",
    '{| class="wikitable"\n|-\n! a !! b\n|-\n| c || d\n|}\n',
    "<ref>{{cite web|url=http://x.org|title=T}}\n== Inside ==\nafter</ref> tail",
    "{{lang|fr|''mot''}} '''bold''' ''it''",
]


def assert_same_tree(ours: Code, theirs: mwparserfromhell.wikicode.Wikicode) -> None:
    """`ours` holds the nodes of `theirs` (mwparserfromhell's builder), same fields, same source."""
    assert str(ours) == str(theirs)
    assert len(ours) == len(theirs.nodes)
    for mine, node in zip(ours, theirs.nodes):
        assert str(mine) == str(node)
        if isinstance(node, mw.Text):
            assert mine == node.value
        elif isinstance(node, mw.Template):
            assert isinstance(mine, Template)
            assert_same_tree(mine.name, node.name)
            assert [p.showkey for p in mine.params] == [p.showkey for p in node.params]
            for ours_param, param in zip(mine.params, node.params):
                assert_same_tree(ours_param.value, param.value)
                if param.showkey:
                    assert_same_tree(ours_param.key, param.name)
        elif isinstance(node, mw.Argument):
            assert_same_tree(mine.name, node.name)
            assert (mine.default is None) == (node.default is None)
        elif isinstance(node, mw.Wikilink):
            assert isinstance(mine, Wikilink)
            assert_same_tree(mine.title, node.title)
            assert (mine.text is None) == (node.text is None)
            if node.text is not None:
                assert_same_tree(mine.text, node.text)
        elif isinstance(node, mw.ExternalLink):
            assert (mine.brackets, mine.suppress_space) == (node.brackets, node.suppress_space)
            assert_same_tree(mine.url, node.url)
            assert (mine.title is None) == (node.title is None)
        elif isinstance(node, mw.HTMLEntity):
            assert (mine.value, mine.named, mine.hexadecimal) == (node.value, node.named, node.hexadecimal)
            assert mine.normalize() == node.normalize()
        elif isinstance(node, mw.Heading):
            assert mine.level == node.level
            assert_same_tree(mine.title, node.title)
        elif isinstance(node, mw.Comment):
            assert mine.contents == node.contents
        else:
            assert isinstance(node, mw.Tag) and isinstance(mine, Tag)
            assert (mine.wiki_markup, mine.self_closing, mine.invalid, mine.implicit, mine.padding,
                    mine.wiki_style_separator, mine.closing_wiki_markup) == (
                node.wiki_markup, node.self_closing, node.invalid, node.implicit, node.padding,
                node.wiki_style_separator, node.closing_wiki_markup)
            assert [str(a) for a in mine.attributes] == [str(a) for a in node.attributes]
            assert_same_tree(mine.tag, node.tag)
            assert_same_tree(mine.closing_tag, node.closing_tag)
            assert_same_tree(mine.contents, node.contents)


@pytest.mark.parametrize("text", CONSTRUCTS)
def test_the_tree_is_mwparserfromhells_node_for_node(text: str) -> None:
    assert_same_tree(parse(text), mwparserfromhell.parse(text, skip_style_tags=True))


def test_fields_read_from_the_source() -> None:
    code = parse("a{{Lang|fr|x=y|mot}}[[T|t]]&#x4A;")
    assert code[0] == "a"
    template, link, entity = code[1], code[2], code[3]
    assert str(template.name) == "Lang"
    assert [(p.showkey, str(p.key) if p.key else None, str(p.value)) for p in template.params] == [
        (False, None, "fr"), (True, "x", "y"), (False, None, "mot")]
    assert (str(link.title), str(link.text)) == ("T", "t")
    assert (entity.value, entity.hex_char, entity.normalize()) == ("4A", "x", "J")


def test_a_tags_contents_are_built_when_read() -> None:
    text = '{|\n| a || b\n|}\n<ref>x\n== H ==\ny</ref>'
    table, _, ref = parse(text)
    assert isinstance(table, Tag) and table._contents is None  # not built yet
    assert not table.may_hold_heading
    assert ref.may_hold_heading
    assert [type(node).__name__ for node in ref.contents] == ["str", "Heading", "str"]
    # the line break after `{|` is the table's padding, not its contents, to mwparserfromhell too
    assert str(table.contents) == "| a || b\n" == str(mwparserfromhell.parse(text).nodes[0].contents)


def test_tokens_that_do_not_nest_are_one_clear_error() -> None:
    from mwparserfromhell.parser import tokens as tk

    with pytest.raises(tree.BrokenTokens, match="expected WikilinkSeparator or WikilinkClose, found the end"):
        tree._Builder([tk.WikilinkOpen(), tk.Text(text="a")]).build()


def _real_articles() -> list[str]:
    dumps = sorted(REAL_WIKIPEDIA.glob("*.xml.bz2")) if REAL_WIKIPEDIA.is_dir() else []
    if not dumps:
        pytest.skip(f"real Wikipedia dumps not present ({REAL_WIKIPEDIA}): only on the project's machines")
    texts = []
    for path in dumps:
        with bz2.open(path) as stream:
            try:
                for _, text in etree.iterparse(stream, tag="{*}text", resolve_entities=False, no_network=True):
                    texts.append(text.text or "")
            except etree.XMLSyntaxError:
                pass  # both files end without their closing tags: the pages before are whole
    return texts


@pytest.mark.slow
def test_real_articles_make_mwparserfromhells_tree() -> None:
    texts = _real_articles()
    assert len(texts) == 542
    for text in texts:
        assert_same_tree(parse(text), mwparserfromhell.parse(text, skip_style_tags=True))
