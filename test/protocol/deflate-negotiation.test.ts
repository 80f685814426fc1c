// permessage-deflate negotiation (RFC 7692 §5, §7.1) for both roles, as pure functions over header text: the
// server answers the first offer it can honour and never throws on what a client sends; the client builds its
// offer and refuses any answer that is not a valid response to it. No sockets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HandshakeError } from '../../src/errors.js';
import {
  acceptDeflateResponse, deflateOffer, negotiateDeflateAsServer, parseExtensions,
  type DeflateAgreement, type DeflateNegotiationOptions, type ServerNegotiation,
} from '../../src/protocol/deflate-negotiation.js';
import { Rng } from '../_support/recorder.js';

const DEFAULTS: DeflateAgreement = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
const agreement = (changes: Partial<DeflateAgreement> = {}): DeflateAgreement => ({ ...DEFAULTS, ...changes });

/** The server's answer to `header`, which must be an acceptance. */
function accepted(header: string | readonly string[], options?: DeflateNegotiationOptions): ServerNegotiation {
  let result: ServerNegotiation | undefined;
  assert.doesNotThrow(() => { result = negotiateDeflateAsServer(header, options); }, JSON.stringify(header));
  assert.ok(result !== undefined, `expected ${JSON.stringify(header)} to be accepted`);
  return result;
}

/** Asserts the server declines `header` (no compression) and does not throw. */
function declined(header: string | readonly string[] | undefined, options?: DeflateNegotiationOptions): void {
  let result: ServerNegotiation | undefined;
  assert.doesNotThrow(() => { result = negotiateDeflateAsServer(header, options); }, JSON.stringify(header));
  assert.equal(result, undefined, `expected ${JSON.stringify(header)} to be declined, got ${JSON.stringify(result)}`);
}

/** The response's parameters as name -> value (undefined for a parameter without one), checked to be one element. */
function responseParams(response: string): Map<string, string | undefined> {
  const elements = parseExtensions(response);
  assert.ok(elements !== undefined, `the response parses: ${response}`);
  assert.equal(elements.length, 1, `one extension in the response: ${response}`);
  assert.equal(elements[0]!.name, 'permessage-deflate');
  const params = new Map<string, string | undefined>();
  for (const { name, value } of elements[0]!.params) {
    assert.ok(!params.has(name), `${name} appears once in ${response}`);
    params.set(name, value);
  }
  return params;
}

/** Calls acceptDeflateResponse and returns the HandshakeError it must throw. */
function refusedAnswer(header: string | readonly string[], options?: DeflateNegotiationOptions, message?: RegExp): HandshakeError {
  try {
    acceptDeflateResponse(header, options);
  } catch (error) {
    assert.ok(error instanceof HandshakeError, `expected a HandshakeError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_HANDSHAKE_EXTENSION');
    assert.equal(error.status, 101);
    if (message !== undefined) assert.match(error.message, message);
    return error;
  }
  assert.fail(`accepted the answer ${JSON.stringify(header)} to ${JSON.stringify(options ?? {})}`);
}

describe('parseExtensions (RFC 6455 §9.1 grammar)', () => {
  it('reads elements and parameters, lower-cases names, unquotes values and ignores empty list elements (RFC 7230 §7)', () => {
    assert.deepEqual(parseExtensions(undefined), []);
    assert.deepEqual(parseExtensions(''), []);
    assert.deepEqual(parseExtensions(' , ,'), []);
    assert.deepEqual(parseExtensions('Foo; A=1;b="x" , bar'), [
      { name: 'foo', params: [{ name: 'a', value: '1' }, { name: 'b', value: 'x' }] },
      { name: 'bar', params: [] },
    ]);
    assert.deepEqual(parseExtensions(['a;x', 'b']), [{ name: 'a', params: [{ name: 'x', value: undefined }] }, { name: 'b', params: [] }]);
    assert.deepEqual(parseExtensions('a; v="1\\2"'), [{ name: 'a', params: [{ name: 'v', value: '12' }] }], 'a quoted-pair unescapes');
  });

  it('returns undefined for text outside the grammar', () => {
    for (const bad of ['a;', '; a', 'a b', 'a;=1', 'a; x=', 'a; x="1', 'a; x="1 2"', 'a; x="\\"', 'a; x=1=2', 'a; x=@', '"a"', 'a/b']) {
      assert.equal(parseExtensions(bad), undefined, JSON.stringify(bad));
    }
  });
});

describe('negotiateDeflateAsServer: accepting offers (RFC 7692 §5, §7.1)', () => {
  it('answers a bare offer with a bare "permessage-deflate" and the default agreement (§7.1)', () => {
    assert.deepEqual(accepted('permessage-deflate'), { agreement: agreement(), response: 'permessage-deflate' });
  });

  it('accepts server_no_context_takeover and confirms it in the response (§7.1.1.1)', () => {
    const { agreement: agreed, response } = accepted('permessage-deflate; server_no_context_takeover');
    assert.deepEqual(agreed, agreement({ serverNoContextTakeover: true }));
    assert.deepEqual([...responseParams(response)], [['server_no_context_takeover', undefined]]);
  });

  it('accepts client_no_context_takeover and includes it in the response (§7.1.1.2)', () => {
    const { agreement: agreed, response } = accepted('permessage-deflate; client_no_context_takeover');
    assert.deepEqual(agreed, agreement({ clientNoContextTakeover: true }));
    assert.deepEqual([...responseParams(response)], [['client_no_context_takeover', undefined]]);
  });

  it('accepts server_max_window_bits=9..15 and answers it with the same value (§7.1.2.1)', () => {
    for (let bits = 9; bits <= 15; bits++) {
      const { agreement: agreed, response } = accepted(`permessage-deflate; server_max_window_bits=${bits}`);
      assert.deepEqual(agreed, agreement({ serverMaxWindowBits: bits }), `bits ${bits}`);
      assert.deepEqual([...responseParams(response)], [['server_max_window_bits', String(bits)]], `bits ${bits}`);
    }
  });

  it('accepts client_max_window_bits without a value and does not limit the client unless configured to (§7.1.2.2)', () => {
    const { agreement: agreed, response } = accepted('permessage-deflate; client_max_window_bits');
    assert.deepEqual(agreed, agreement());
    assert.equal(response, 'permessage-deflate');
  });

  it('accepts client_max_window_bits=8..15 and answers with a value no larger than the offer (§7.1.2.2)', () => {
    for (let bits = 8; bits <= 15; bits++) {
      const { agreement: agreed, response } = accepted(`permessage-deflate; client_max_window_bits=${bits}`);
      assert.equal(agreed.clientMaxWindowBits, bits, `bits ${bits}`);
      const answered = responseParams(response).get('client_max_window_bits');
      assert.ok(answered !== undefined && Number(answered) <= bits, `answered ${String(answered)} to ${bits}`);
      assert.equal(Number(answered), agreed.clientMaxWindowBits);
    }
  });

  it('accepts every parameter together, in any order', () => {
    const { agreement: agreed, response } = accepted('permessage-deflate; client_max_window_bits=10; server_max_window_bits=12; client_no_context_takeover; server_no_context_takeover');
    assert.deepEqual(agreed, { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 10 });
    assert.deepEqual(Object.fromEntries(responseParams(response)), {
      server_no_context_takeover: undefined, client_no_context_takeover: undefined, server_max_window_bits: '12', client_max_window_bits: '10',
    });
  });

  it('takes quoted values as their unquoted token (RFC 6455 §9.1)', () => {
    assert.equal(accepted('permessage-deflate; server_max_window_bits="10"').agreement.serverMaxWindowBits, 10);
    assert.equal(accepted('permessage-deflate; client_max_window_bits="9"').agreement.clientMaxWindowBits, 9);
    assert.equal(accepted('permessage-deflate; server_max_window_bits="1\\1"').agreement.serverMaxWindowBits, 11);
  });

  it('compares extension and parameter names case-insensitively, and allows spaces and tabs around ";" and "="', () => {
    const { agreement: agreed } = accepted('PerMessage-Deflate ;\tSERVER_NO_CONTEXT_TAKEOVER ; Client_Max_Window_Bits = 11');
    assert.deepEqual(agreed, agreement({ serverNoContextTakeover: true, clientMaxWindowBits: 11 }));
  });

  it('reads offers spread over several header lines (an array, as node gives repeated headers)', () => {
    assert.deepEqual(accepted(['x-webkit-deflate-frame', 'permessage-deflate; server_no_context_takeover']).agreement, agreement({ serverNoContextTakeover: true }));
  });
});

describe('negotiateDeflateAsServer: several offers (RFC 7692 §5)', () => {
  it('answers the first acceptable offer and declines the rest by leaving them out', () => {
    const { agreement: agreed, response } = accepted('permessage-deflate; server_max_window_bits=10, permessage-deflate; server_no_context_takeover, permessage-deflate');
    assert.deepEqual(agreed, agreement({ serverMaxWindowBits: 10 }));
    assert.equal(response, 'permessage-deflate; server_max_window_bits=10');
  });

  it('skips offers it cannot accept (unknown or invalid parameters, server_max_window_bits=8) and answers the next one', () => {
    const { agreement: agreed, response } = accepted(
      'x-webkit-deflate-frame, permessage-deflate; foo, permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits=16, permessage-deflate; client_no_context_takeover, permessage-deflate');
    assert.deepEqual(agreed, agreement({ clientNoContextTakeover: true }));
    assert.equal(response, 'permessage-deflate; client_no_context_takeover');
  });

  it('ignores other extensions entirely and declines when no permessage-deflate offer is acceptable', () => {
    declined('x-webkit-deflate-frame');
    declined('deflate-frame, x-custom; a=1');
    declined('permessage-deflate; foo, permessage-deflate; server_max_window_bits=8');
  });
});

describe('negotiateDeflateAsServer: malformed headers and offers are declined without throwing (RFC 7692 §7.1)', () => {
  it('declines when there is no offer at all', () => {
    declined(undefined);
    declined('');
    declined('   ');
    declined([]);
  });

  it('declines an unknown parameter', () => {
    declined('permessage-deflate; foo');
    declined('permessage-deflate; server_no_context_takeover; mux');
    declined('permessage-deflate; client_max_window');
  });

  it('declines a parameter that appears twice, even with the same value', () => {
    declined('permessage-deflate; server_no_context_takeover; server_no_context_takeover');
    declined('permessage-deflate; client_no_context_takeover; CLIENT_NO_CONTEXT_TAKEOVER');
    declined('permessage-deflate; server_max_window_bits=10; server_max_window_bits=10');
    declined('permessage-deflate; client_max_window_bits; client_max_window_bits=10');
  });

  it('declines a value on a parameter that takes none (§7.1.1)', () => {
    declined('permessage-deflate; server_no_context_takeover=1');
    declined('permessage-deflate; client_no_context_takeover="x"');
    declined('permessage-deflate; server_no_context_takeover=true');
  });

  it('declines server_max_window_bits without a value (§7.1.2.1)', () => {
    declined('permessage-deflate; server_max_window_bits');
  });

  it('declines window bits outside 8..15 or not written as a plain decimal without leading zeros (§7.1.2)', () => {
    for (const value of ['7', '16', '0', '-9', '08', '010', '9.0', '1e1', 'ten', '+9', '"16"', '" 9"']) {
      declined(`permessage-deflate; server_max_window_bits=${value}`);
      declined(`permessage-deflate; client_max_window_bits=${value}`);
    }
  });

  it('declines server_max_window_bits=8: zlib cannot compress raw deflate with a 256-byte window', () => {
    declined('permessage-deflate; server_max_window_bits=8');
    declined('permessage-deflate; server_max_window_bits="8"; server_no_context_takeover');
  });

  it('declines bad quoting (unterminated, a quoted value that is not a token, a quote inside a token)', () => {
    declined('permessage-deflate; server_max_window_bits="10');
    declined('permessage-deflate; server_max_window_bits="1 0"');
    declined('permessage-deflate; server_max_window_bits=""');
    declined('permessage-deflate; server_max_window_bits=1"0"');
    declined('permessage-deflate; server_max_window_bits="10"x');
    declined('permessage-deflate; client_max_window_bits="\\');
  });

  it('declines an element without a name, an empty parameter, and stray characters (a malformed header declines every offer in it)', () => {
    declined('; server_no_context_takeover');
    declined('permessage-deflate;');
    declined('permessage-deflate;;server_no_context_takeover');
    declined('permessage-deflate; =10');
    declined('permessage-deflate server_no_context_takeover');
    declined('permessage-deflate, ;x');
    declined('permessage-deflate, @');
    declined('permessage-deflate; server_max_window_bits=10 11');
  });

  it('treats empty list elements as nothing (RFC 7230 §7), not as a malformed header', () => {
    assert.equal(accepted(', permessage-deflate,,').response, 'permessage-deflate');
  });
});

describe('negotiateDeflateAsServer: our configuration (RFC 7692 §7.1)', () => {
  it('adds server_no_context_takeover and client_no_context_takeover when configured, even if not offered (§7.1.1)', () => {
    const { agreement: agreed, response } = accepted('permessage-deflate', { serverNoContextTakeover: true, clientNoContextTakeover: true });
    assert.deepEqual(agreed, agreement({ serverNoContextTakeover: true, clientNoContextTakeover: true }));
    assert.deepEqual([...responseParams(response).keys()].sort(), ['client_no_context_takeover', 'server_no_context_takeover']);
  });

  it('announces a configured serverMaxWindowBits below 15 even if not offered, and takes the smaller of offer and configuration', () => {
    let negotiation = accepted('permessage-deflate', { serverMaxWindowBits: 10 });
    assert.equal(negotiation.agreement.serverMaxWindowBits, 10);
    assert.equal(responseParams(negotiation.response).get('server_max_window_bits'), '10');
    negotiation = accepted('permessage-deflate; server_max_window_bits=12', { serverMaxWindowBits: 10 });
    assert.equal(negotiation.agreement.serverMaxWindowBits, 10);
    assert.equal(responseParams(negotiation.response).get('server_max_window_bits'), '10');
    negotiation = accepted('permessage-deflate; server_max_window_bits=9', { serverMaxWindowBits: 12 });
    assert.equal(negotiation.agreement.serverMaxWindowBits, 9);
    assert.equal(responseParams(negotiation.response).get('server_max_window_bits'), '9');
  });

  it('limits the client window only when the client offered client_max_window_bits (§7.1.2.2)', () => {
    let negotiation = accepted('permessage-deflate', { clientMaxWindowBits: 10 });
    assert.equal(negotiation.agreement.clientMaxWindowBits, 15, 'a client that did not offer the parameter may use any window');
    assert.equal(responseParams(negotiation.response).has('client_max_window_bits'), false, 'so the response must not carry it');
    negotiation = accepted('permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 10 });
    assert.equal(negotiation.agreement.clientMaxWindowBits, 10);
    assert.equal(responseParams(negotiation.response).get('client_max_window_bits'), '10');
    negotiation = accepted('permessage-deflate; client_max_window_bits=12', { clientMaxWindowBits: 10 });
    assert.equal(negotiation.agreement.clientMaxWindowBits, 10);
    assert.equal(responseParams(negotiation.response).get('client_max_window_bits'), '10');
    negotiation = accepted('permessage-deflate; client_max_window_bits=9', { clientMaxWindowBits: 10 });
    assert.equal(negotiation.agreement.clientMaxWindowBits, 9);
    assert.equal(responseParams(negotiation.response).get('client_max_window_bits'), '9');
  });

  it('reflects every configured setting at once', () => {
    const { agreement: agreed, response } = accepted('permessage-deflate; client_max_window_bits',
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 11, clientMaxWindowBits: 9 });
    assert.deepEqual(agreed, { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 11, clientMaxWindowBits: 9 });
    assert.deepEqual(Object.fromEntries(responseParams(response)), {
      server_no_context_takeover: undefined, client_no_context_takeover: undefined, server_max_window_bits: '11', client_max_window_bits: '9',
    });
  });

  it('throws RangeError for a configuration outside the ranges (server bits 9-15, client bits 8-15)', () => {
    for (const options of [{ serverMaxWindowBits: 8 }, { serverMaxWindowBits: 16 }, { clientMaxWindowBits: 7 }, { clientMaxWindowBits: 16 }, { serverMaxWindowBits: 10.5 }]) {
      assert.throws(() => negotiateDeflateAsServer('permessage-deflate', options), RangeError, JSON.stringify(options));
    }
    assert.doesNotThrow(() => negotiateDeflateAsServer('permessage-deflate', { clientMaxWindowBits: 8, serverMaxWindowBits: 9 }));
  });
});

describe('negotiateDeflateAsServer: the response never carries what the client did not allow (property, fixed seed)', () => {
  const names = ['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits'];
  const configurations: DeflateNegotiationOptions[] = [
    {}, { serverNoContextTakeover: true }, { clientNoContextTakeover: true }, { serverMaxWindowBits: 9 }, { clientMaxWindowBits: 8 },
    { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 10 },
  ];

  it('for random well-formed offers, the answer matches the offer it answers and the agreement', () => {
    const rng = new Rng(0x7692);
    let acceptedCount = 0;
    for (let round = 0; round < 2000; round++) {
      const offerParams: Array<[string, string | undefined]> = [];
      for (const name of names) {
        if (!rng.bool(0.5)) continue;
        if (name.endsWith('window_bits')) offerParams.push([name, name.startsWith('client') && rng.bool(0.3) ? undefined : String(rng.int(8, 15))]);
        else offerParams.push([name, undefined]);
      }
      const text = ['permessage-deflate', ...offerParams.map(([name, value]) => (value === undefined ? name : `${name}=${value}`))].join('; ');
      const options = rng.pick(configurations);
      const result = negotiateDeflateAsServer(text, options);
      const offered = new Map(offerParams);
      if (offered.get('server_max_window_bits') === '8') {
        assert.equal(result, undefined, text);
        continue;
      }
      assert.ok(result !== undefined, `declined a valid offer: ${text} with ${JSON.stringify(options)}`);
      acceptedCount++;
      const answer = responseParams(result.response);
      // §7.1.2.2: client_max_window_bits only if the client said it supports it, and never above its value.
      if (!offered.has('client_max_window_bits')) assert.equal(answer.has('client_max_window_bits'), false, `${text} -> ${result.response}`);
      const clientOffered = offered.get('client_max_window_bits');
      if (answer.has('client_max_window_bits')) {
        const value = Number(answer.get('client_max_window_bits'));
        assert.ok(value >= 8 && value <= Number(clientOffered ?? 15), `${text} -> ${result.response}`);
        assert.equal(value, result.agreement.clientMaxWindowBits);
      } else {
        assert.equal(result.agreement.clientMaxWindowBits, clientOffered === undefined ? 15 : Number(clientOffered), `${text} -> ${result.response}`);
      }
      // §7.1.2.1: server_max_window_bits answered with the offered value or less, and never below 9.
      const serverOffered = offered.get('server_max_window_bits');
      if (serverOffered !== undefined) assert.ok(answer.has('server_max_window_bits'), `${text} -> ${result.response}`);
      const serverBits = answer.has('server_max_window_bits') ? Number(answer.get('server_max_window_bits')) : 15;
      assert.equal(serverBits, result.agreement.serverMaxWindowBits);
      assert.ok(serverBits >= 9 && serverBits <= Number(serverOffered ?? 15) && serverBits <= (options.serverMaxWindowBits ?? 15), `${text} -> ${result.response}`);
      // §7.1.1: the no-context-takeover parameters are answered when offered (server) and reflect the agreement.
      if (offered.has('server_no_context_takeover')) assert.ok(answer.has('server_no_context_takeover'), `${text} -> ${result.response}`);
      assert.equal(answer.has('server_no_context_takeover'), result.agreement.serverNoContextTakeover);
      assert.equal(answer.has('client_no_context_takeover'), result.agreement.clientNoContextTakeover);
      // And our own client accepts the answer to the equivalent offer.
      if (clientOffered !== '8' && serverOffered !== '8') {
        const clientOptions: DeflateNegotiationOptions = {
          serverNoContextTakeover: offered.has('server_no_context_takeover'),
          clientNoContextTakeover: offered.has('client_no_context_takeover'),
          ...(serverOffered !== undefined && { serverMaxWindowBits: Number(serverOffered) }),
          ...(clientOffered !== undefined && { clientMaxWindowBits: Number(clientOffered) }),
        };
        if (!(result.agreement.clientMaxWindowBits === 8)) {
          assert.deepEqual(acceptDeflateResponse(result.response, clientOptions), {
            ...result.agreement,
            clientMaxWindowBits: Math.min(result.agreement.clientMaxWindowBits, clientOptions.clientMaxWindowBits ?? 15),
          }, `${text} -> ${result.response}`);
        }
      }
    }
    assert.ok(acceptedCount > 1000, `only ${acceptedCount} offers were accepted`);
  });
});

describe('negotiateDeflateAsServer: fuzzed header text never throws (fixed seed)', () => {
  it('returns undefined or a well-formed answer for 20,000 random headers built from the grammar\'s pieces', () => {
    const rng = new Rng(0xdef1a7e);
    const pieces = ['permessage-deflate', 'PERMESSAGE-DEFLATE', 'x-webkit-deflate-frame', 'server_no_context_takeover', 'client_no_context_takeover',
      'server_max_window_bits', 'client_max_window_bits', ';', ';', '=', '=', ',', ',', ' ', '\t', '"', '\\', '8', '9', '10', '15', '16', '08', '',
      'a', '@', '\u00e9', '\u0000', '\r\n', '=="', '"10"'];
    for (let round = 0; round < 20_000; round++) {
      let header = '';
      const count = rng.int(0, 14);
      for (let i = 0; i < count; i++) header += rng.pick(pieces);
      let result: ServerNegotiation | undefined;
      assert.doesNotThrow(() => { result = negotiateDeflateAsServer(header, rng.pick([{}, { clientMaxWindowBits: 9, serverNoContextTakeover: true }])); }, JSON.stringify(header));
      if (result !== undefined) {
        const params = responseParams(result.response);
        for (const name of params.keys()) assert.ok(['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits'].includes(name));
      }
    }
  });

  it('never throws for 5,000 strings of random printable and control characters, nor does the client check throw anything but HandshakeError', () => {
    const rng = new Rng(42);
    for (let round = 0; round < 5000; round++) {
      const length = rng.int(0, 60);
      let header = '';
      for (let i = 0; i < length; i++) header += String.fromCharCode(rng.bool(0.9) ? rng.int(0x20, 0x7e) : rng.int(0, 0xff));
      if (rng.bool(0.5)) header = `permessage-deflate;${header}`;
      assert.doesNotThrow(() => negotiateDeflateAsServer(header), JSON.stringify(header));
      try {
        acceptDeflateResponse(header);
      } catch (error) {
        assert.ok(error instanceof HandshakeError, `${JSON.stringify(header)} threw ${String(error)}`);
      }
    }
  });
});

describe('deflateOffer (client, RFC 7692 §5, §7.1)', () => {
  it('offers permessage-deflate and says it supports client_max_window_bits by default', () => {
    assert.equal(deflateOffer(), 'permessage-deflate; client_max_window_bits');
    assert.equal(deflateOffer({}), 'permessage-deflate; client_max_window_bits');
  });

  it('adds each wish: no context takeover either way, a server window limit, a client window value', () => {
    assert.equal(deflateOffer({ serverNoContextTakeover: true }), 'permessage-deflate; server_no_context_takeover; client_max_window_bits');
    assert.equal(deflateOffer({ clientNoContextTakeover: true }), 'permessage-deflate; client_no_context_takeover; client_max_window_bits');
    assert.equal(deflateOffer({ serverMaxWindowBits: 10 }), 'permessage-deflate; server_max_window_bits=10; client_max_window_bits');
    assert.equal(deflateOffer({ serverMaxWindowBits: 15 }), 'permessage-deflate; client_max_window_bits', 'the default 15 is not written');
    assert.equal(deflateOffer({ clientMaxWindowBits: 9 }), 'permessage-deflate; client_max_window_bits=9');
    assert.equal(deflateOffer({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 11 }),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11');
  });

  it('produces offers our own server accepts as they stand', () => {
    for (const options of [{}, { serverNoContextTakeover: true }, { serverMaxWindowBits: 9, clientMaxWindowBits: 9 }, { clientNoContextTakeover: true, serverMaxWindowBits: 13 }]) {
      const offer = deflateOffer(options);
      const { response } = accepted(offer);
      assert.ok(acceptDeflateResponse(response, options) !== undefined, offer);
    }
  });

  it('throws RangeError for window bits it cannot honour (below 9: zlib compresses with at least 9) or outside 15', () => {
    for (const options of [{ serverMaxWindowBits: 8 }, { clientMaxWindowBits: 8 }, { serverMaxWindowBits: 16 }, { clientMaxWindowBits: 0 }, { serverMaxWindowBits: 9.5 }]) {
      assert.throws(() => deflateOffer(options), RangeError, JSON.stringify(options));
    }
  });
});

describe('acceptDeflateResponse (client checks of the answer, RFC 7692 §5, §7.1)', () => {
  it('returns undefined when the server sent no Sec-WebSocket-Extensions (it declined compression)', () => {
    assert.equal(acceptDeflateResponse(undefined), undefined);
    assert.equal(acceptDeflateResponse(''), undefined);
    assert.equal(acceptDeflateResponse([]), undefined);
  });

  it('accepts each valid form and returns the agreement', () => {
    assert.deepEqual(acceptDeflateResponse('permessage-deflate'), agreement());
    assert.deepEqual(acceptDeflateResponse('Permessage-Deflate'), agreement());
    assert.deepEqual(acceptDeflateResponse('permessage-deflate; server_no_context_takeover'), agreement({ serverNoContextTakeover: true }));
    assert.deepEqual(acceptDeflateResponse('permessage-deflate; client_no_context_takeover'), agreement({ clientNoContextTakeover: true }));
    assert.deepEqual(acceptDeflateResponse('permessage-deflate; server_max_window_bits=10'), agreement({ serverMaxWindowBits: 10 }));
    assert.deepEqual(acceptDeflateResponse('permessage-deflate; server_max_window_bits="9"'), agreement({ serverMaxWindowBits: 9 }));
    assert.deepEqual(acceptDeflateResponse('permessage-deflate; client_max_window_bits=9'), agreement({ clientMaxWindowBits: 9 }));
    assert.deepEqual(acceptDeflateResponse('permessage-deflate; client_max_window_bits=11', { clientMaxWindowBits: 11 }), agreement({ clientMaxWindowBits: 11 }));
    assert.deepEqual(acceptDeflateResponse('permessage-deflate; server_max_window_bits=11', { serverMaxWindowBits: 11 }), agreement({ serverMaxWindowBits: 11 }));
    assert.deepEqual(acceptDeflateResponse('permessage-deflate; server_no_context_takeover', { serverNoContextTakeover: true }), agreement({ serverNoContextTakeover: true }));
    assert.deepEqual(
      acceptDeflateResponse('permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10', { serverMaxWindowBits: 12, clientMaxWindowBits: 12 }),
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 10 });
  });

  it('keeps our own offered limits when the server does not repeat them: a client_max_window_bits value, client_no_context_takeover', () => {
    assert.equal(acceptDeflateResponse('permessage-deflate', { clientMaxWindowBits: 10 })?.clientMaxWindowBits, 10);
    assert.equal(acceptDeflateResponse('permessage-deflate', { clientNoContextTakeover: true })?.clientNoContextTakeover, true);
  });

  it('refuses an extension we did not offer, alone or next to permessage-deflate', () => {
    refusedAnswer('x-webkit-deflate-frame', {}, /x-webkit-deflate-frame/);
    refusedAnswer('permessage-deflate, x-custom', {}, /x-custom/);
  });

  it('refuses two permessage-deflate answers (one header line or two)', () => {
    refusedAnswer('permessage-deflate, permessage-deflate', {}, /more than once/);
    refusedAnswer(['permessage-deflate', 'permessage-deflate; server_no_context_takeover'], {}, /more than once/);
  });

  it('refuses unknown, duplicate or ill-valued parameters and malformed text', () => {
    refusedAnswer('permessage-deflate; foo');
    refusedAnswer('permessage-deflate; server_no_context_takeover; server_no_context_takeover');
    refusedAnswer('permessage-deflate; server_no_context_takeover=1');
    refusedAnswer('permessage-deflate; server_max_window_bits');
    refusedAnswer('permessage-deflate; server_max_window_bits=16');
    refusedAnswer('permessage-deflate; client_max_window_bits=7');
    refusedAnswer('permessage-deflate;', {}, /malformed/);
    refusedAnswer('permessage-deflate; server_max_window_bits="10', {}, /malformed/);
  });

  it('refuses server_max_window_bits above what we offered, and a missing one when we offered a limit (§7.1.2.1)', () => {
    refusedAnswer('permessage-deflate; server_max_window_bits=12', { serverMaxWindowBits: 11 }, /above the 11 we offered/);
    refusedAnswer('permessage-deflate', { serverMaxWindowBits: 11 }, /did not confirm/);
  });

  it('refuses client_max_window_bits without a value, or above our offered value (§7.1.2.2)', () => {
    refusedAnswer('permessage-deflate; client_max_window_bits', {}, /needs a value/);
    refusedAnswer('permessage-deflate; client_max_window_bits=12', { clientMaxWindowBits: 11 }, /above the 11 we offered/);
  });

  it('refuses client_max_window_bits=8: zlib cannot keep a 256-byte window', () => {
    refusedAnswer('permessage-deflate; client_max_window_bits=8', {}, /=8/);
  });

  it('refuses an answer that dropped our server_no_context_takeover (§7.1.1.1: accepting the offer means confirming it)', () => {
    refusedAnswer('permessage-deflate', { serverNoContextTakeover: true }, /server_no_context_takeover/);
  });

  it('reports the HTTP status it was given', () => {
    try {
      acceptDeflateResponse('x-foo', {}, 0);
      assert.fail('accepted x-foo');
    } catch (error) {
      assert.ok(error instanceof HandshakeError);
      assert.equal(error.status, 0);
    }
  });
});
