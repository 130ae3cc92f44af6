"""A session of python3-etcd3gw (Debian's gateway client) against one endpoint.

Usage: python3 etcd3gw-session.py HOST PORT. Prints one line per step; the test runs it against the
real etcd and against our server and compares the lines (the version line differs by design).
"""
import sys
import threading
import time

from etcd3gw.client import Etcd3Client


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    c = Etcd3Client(host=host, port=port, api_path='/v3/')
    print('version', c.status()['version'])
    print('members', [(m.get('name'), m.get('peerURLs')) for m in c.members()])
    print('put', c.put('gw/a', 'v1'))
    print('get', c.get('gw/a'))
    print('get-missing', c.get('gw/missing'))
    print('create-existing', c.create('gw/a', 'x'))
    print('create-new', c.create('gw/b', 'v2'))
    print('prefix', sorted(v for v, _ in c.get_prefix('gw/')))
    meta = c.get('gw/a', metadata=True)[0][1]
    print('metadata', sorted(meta.keys()), meta['key'], meta['version'])
    print('replace-ok', c.replace('gw/a', 'v1', 'v3'))
    print('replace-bad', c.replace('gw/a', 'nope', 'v4'))
    print('get-all', [(m['key'], v) for v, m in c.get_all()])
    lease = c.lease(ttl=60)
    print('lease-ttl', 55 <= lease.ttl() <= 60)
    print('refresh', lease.refresh())
    print('put-lease', c.put('gw/leased', 'x', lease=lease))
    print('lease-keys', lease.keys())
    events, cancel = c.watch('gw/w', prev_kv=True)
    got = []

    def reader():
        for e in events:
            got.append((e.get('type', 'PUT'), e['kv']['key'], e['kv'].get('value'),
                        e.get('prev_kv', {}).get('value')))
            if len(got) == 3:
                break

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.5)
    c.put('gw/w', 'hello')
    c.put('gw/w', 'again')
    c.delete('gw/w')
    t.join(10)
    cancel()
    print('watch', got)
    print('revoke', lease.revoke())
    print('after-revoke', c.get('gw/leased'))
    print('delete', c.delete('gw/a'), c.delete('gw/missing'))
    print('delete-prefix', c.delete_prefix('gw/'))
    print('empty', c.get_all())


if __name__ == '__main__':
    main()
