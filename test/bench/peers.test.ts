import { describe, expect, it } from 'vitest';
import { missingPeers, REQUIRED_PEERS } from '../../bench/lib/peers.js';

describe('bench peers', () => {
  it('names each missing program with the Debian package to install', () => {
    const peers = [...REQUIRED_PEERS, { program: 'fcgi-prefork-no-such-peer', debian: 'no-such-package' }];
    expect(
      missingPeers(['sh', 'fcgi-prefork-no-such-peer'], [{ program: 'sh', debian: 'dash' }, ...peers]),
    ).toEqual(['fcgi-prefork-no-such-peer (apt-get install no-such-package)']);
  });

  it('checks only the programs asked for', () => {
    expect(missingPeers([], [{ program: 'fcgi-prefork-no-such-peer', debian: 'x' }])).toEqual([]);
  });
});
