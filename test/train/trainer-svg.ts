import assert from 'node:assert/strict';

/**
 * A small XML well-formedness check for the SVGs ferry writes (no XML parser is a dependency):
 * one root <svg> in the SVG namespace, every tag closed in order, attributes quoted, no stray '<'.
 */
export function assertWellFormedSvg(text: string): void {
  const body = text.trim();
  assert.match(body, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  const open: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let index = 0;
  while (index < body.length) {
    const next = body.indexOf('<', index);
    if (next === -1) break;
    assert.ok(!body.slice(index, next).includes('>'), `stray '>' before offset ${next}`);
    tag.lastIndex = next;
    const match = tag.exec(body);
    assert.ok(match, `malformed tag at offset ${next}: ${body.slice(next, next + 40)}`);
    const [, closing, name, , selfClosing] = match;
    if (closing) assert.equal(open.pop(), name, `</${name}> closes the wrong element`);
    else if (!selfClosing) open.push(name!);
    if (open.length === 0) assert.equal(tag.lastIndex, body.length, 'content after the root element');
    index = tag.lastIndex;
  }
  assert.deepEqual(open, [], 'unclosed elements');
}
