/*
 * functions.c: Berth's Redis Functions library (Lua), as a C string.
 *
 * These functions are the only code that changes a cell's keys: each one
 * re-checks what the caller's replica believed (the group's generation, the
 * host's epoch, state and free capacity) and either applies the whole
 * change -- records, host group sets, assignment streams, sequence counter
 * and change log -- or changes nothing and answers {0, reason, message}.
 * Success answers {1, seq, id}: the change's sequence number and its
 * change-log entry's stream id, so that the replica that made it can apply
 * it without reading it back while nothing else came between.  Every key is passed in KEYS (Cluster-safe: they
 * all carry the cell's hash tag).  They must never carry a 64-bit integer
 * through a Lua number (doubles): digests stay opaque strings inside the
 * group record, which the functions store as given and never re-encode.
 */
#include "store.h"

const char berth__functions_source[] =
    "#!lua name=berth\n"
    /* cmsgpack is reachable only when a function runs, not at load time. */
    "local function mp_pack(t) return cmsgpack.pack(t) end\n"
    "local function mp_unpack(s) return cmsgpack.unpack(s) end\n"
    "\n"
    /* One change: bump the counter, append the log entry.  MAXLEN ~ lets
     * Redis trim whole stream nodes, which keeps XADD O(1). */
    "local function log_append(keys_log, keys_seq, maxlen, op, name, rec)\n"
    "  local seq = redis.call('INCR', keys_seq)\n"
    "  local id = redis.call('XADD', keys_log, 'MAXLEN', '~', maxlen, '*',\n"
    "                        'seq', seq, 'op', op, 'name', name, 'rec', rec)\n"
    "  return {1, seq, id}\n"
    "end\n"
    "\n"
    /* KEYS: hosts, log, seq.  ARGV: name, record, log max len. */
    "local function host_put(keys, args)\n"
    "  local name = args[1]\n"
    "  local new = mp_unpack(args[2])\n"
    "  if type(new) ~= 'table' or new.v ~= 1 or new.name ~= name then\n"
    "    return {0, 'invalid', 'host record for ' .. name .. ' is malformed'}\n"
    "  end\n"
    "  new.used_mc, new.used_mem, new.used_gpu, new.groups = 0, 0, 0, 0\n"
    "  local raw = redis.call('HGET', keys[1], name)\n"
    "  if raw then\n"
    "    local old = mp_unpack(raw)\n"
    "    if old.groups > 0 then\n"
    "      local what = nil\n"
    "      if old.os ~= new.os then what = 'OS'\n"
    "      elseif old.build ~= new.build then what = 'OS build'\n"
    "      elseif old.gpu_sku ~= new.gpu_sku then what = 'GPU SKU' end\n"
    "      if what then\n"
    "        return {0, 'busy', 'host ' .. name .. ' holds ' .. old.groups ..\n"
    "                ' container groups: its ' .. what .. ' cannot change'}\n"
    "      end\n"
    "    end\n"
    "    if new.cores * 1000 < old.used_mc or new.mem < old.used_mem or\n"
    "       (new.gpu_count or 0) < old.used_gpu then\n"
    "      return {0, 'busy', 'host ' .. name .. ' cannot shrink below what its ' ..\n"
    "              'container groups use'}\n"
    "    end\n"
    "    new.used_mc, new.used_mem, new.used_gpu, new.groups =\n"
    "      old.used_mc, old.used_mem, old.used_gpu, old.groups\n"
    "  end\n"
    "  local seq = redis.call('INCR', keys[3])\n"
    "  new.epoch = seq\n"
    "  local rec = mp_pack(new)\n"
    "  redis.call('HSET', keys[1], name, rec)\n"
    "  local id = redis.call('XADD', keys[2], 'MAXLEN', '~', args[3], '*',\n"
    "                        'seq', seq, 'op', 'host', 'name', name, 'rec', rec)\n"
    "  return {1, seq, id}\n"
    "end\n"
    "\n"
    /* KEYS: hosts, log, seq.  ARGV: name, state, log max len. */
    "local function host_state(keys, args)\n"
    "  local raw = redis.call('HGET', keys[1], args[1])\n"
    "  if not raw then\n"
    "    return {0, 'nohost', 'host ' .. args[1] .. ' does not exist'}\n"
    "  end\n"
    "  local h = mp_unpack(raw)\n"
    "  h.state = tonumber(args[2])\n"
    "  local rec = mp_pack(h)\n"
    "  redis.call('HSET', keys[1], args[1], rec)\n"
    "  return log_append(keys[2], keys[3], args[3], 'host', args[1], rec)\n"
    "end\n"
    "\n"
    /* KEYS: hosts, log, seq, hostgroups:NAME, assign:NAME.
     * ARGV: name, log max len. */
    "local function host_del(keys, args)\n"
    "  local raw = redis.call('HGET', keys[1], args[1])\n"
    "  if not raw then\n"
    "    return {0, 'nohost', 'host ' .. args[1] .. ' does not exist'}\n"
    "  end\n"
    "  local h = mp_unpack(raw)\n"
    "  if h.groups > 0 or redis.call('SCARD', keys[4]) > 0 then\n"
    "    return {0, 'busy', 'host ' .. args[1] .. ' still holds ' .. h.groups ..\n"
    "            ' container groups'}\n"
    "  end\n"
    "  redis.call('HDEL', keys[1], args[1])\n"
    "  redis.call('DEL', keys[4], keys[5])\n"
    "  return log_append(keys[2], keys[3], args[2], 'hostdel', args[1], '')\n"
    "end\n"
    "\n"
    /* The record of group `key` in the hash `groups` (gpu_count defaulted),
     * or nil, when the group is at generation `expect` (0: absent); else
     * nil and the refusal. */
    "local function group_at(groups, key, expect, cache)\n"
    "  local raw\n"
    "  if cache then raw = cache[key] else raw = redis.call('HGET', groups, key) end\n"
    "  local old, gen = nil, 0\n"
    "  if raw then\n"
    "    old = mp_unpack(raw)\n"
    "    old.gpu_count = old.gpu_count or 0\n"
    "    gen = old.gen\n"
    "  end\n"
    "  if gen ~= expect then\n"
    "    return nil, {0, 'generation', 'container group ' .. key .. ' is at generation ' ..\n"
    "                 gen .. ', not ' .. expect}\n"
    "  end\n"
    "  return old, nil\n"
    "end\n"
    "\n"
    /* HOST RECORDS WITHIN ONE CALL.  A cache of the host records a call
     * reads, decoded once and written back once at its end (hc_flush()),
     * however many of its placements change them: a batch of placements
     * on a few hosts decodes and encodes each host's record once. */
    /* A batch call (place_many) also keeps the change counter (read once,
     * written once: `seq`), the members each host set gains (`adds`,
     * added once per set), whether the documents hash exists at all
     * (`docs`: without it a new group has no kept document to drop), the
     * group records (`g`: read with one HMGET, written with one HSET:
     * `gw`), the assignments for each host's agent (`asg`: one stream
     * entry per host holding its assignments in order) and the call's
     * change-log ops (`ops`: one entry for all, its 'seq' the first op's,
     * then op, name and rec for each op in order). */
    "local function hc_new(hosts) return {key = hosts, rec = {}, order = {}} end\n"
    /* The decoded record of host `name` (nil when there is none). */
    "local function hc_get(hc, name)\n"
    "  local h = hc.rec[name]\n"
    "  if h == nil then\n"
    "    local raw = redis.call('HGET', hc.key, name)\n"
    "    h = raw and mp_unpack(raw) or false\n"
    "    hc.rec[name] = h\n"
    "  end\n"
    "  return h or nil\n"
    "end\n"
    /* Marks host `name`'s cached record changed. */
    "local function hc_dirty(hc, name)\n"
    "  if not hc.order[name] then\n"
    "    hc.order[name] = true\n"
    "    hc.order[#hc.order + 1] = name\n"
    "  end\n"
    "end\n"
    /* Writes the changed records, in the order they first changed, then
     * what a batch call gathered. */
    "local function hc_flush(hc)\n"
    "  for i = 1, #hc.order do\n"
    "    local name = hc.order[i]\n"
    "    redis.call('HSET', hc.key, name, mp_pack(hc.rec[name]))\n"
    "  end\n"
    "  if hc.adds then\n"
    "    for i = 1, #hc.adds do\n"
    "      local set = hc.adds[i]\n"
    "      redis.call('SADD', set, unpack(hc.adds[set]))\n"
    "    end\n"
    "  end\n"
    "  if hc.gw and #hc.gw > 0 then redis.call('HSET', hc.groups, unpack(hc.gw)) end\n"
    "  if hc.asg then\n"
    "    for i = 1, #hc.asg do\n"
    "      local stream = hc.asg[i]\n"
    "      redis.call('XADD', stream, '*', unpack(hc.asg[stream]))\n"
    "    end\n"
    "  end\n"
    "  if hc.ops and #hc.ops > 0 then\n"
    "    local id = redis.call('XADD', hc.log, 'MAXLEN', '~', hc.maxlen, '*',\n"
    "                          'seq', hc.seq0 + 1, unpack(hc.ops))\n"
    "    for i = 1, #hc.res do\n"
    "      hc.res[i][3] = id\n"
    "      hc.res[i][4] = i == #hc.res and 1 or 0\n"
    "    end\n"
    "  end\n"
    "  if hc.seq and hc.seq ~= hc.seq0 then redis.call('SET', hc.seq_key, hc.seq) end\n"
    "end\n"
    "\n"
    /* log_append() for a call that keeps the counter in hc (a batch), or
     * as it is. */
    "local function hc_log(hc, keys_log, keys_seq, maxlen, op, name, rec)\n"
    "  if not hc.seq then return log_append(keys_log, keys_seq, maxlen, op, name, rec) end\n"
    "  hc.seq = hc.seq + 1\n"
    "  local n = #hc.ops\n"
    "  hc.ops[n + 1], hc.ops[n + 2], hc.ops[n + 3] = 'op', op, 'name'\n"
    "  hc.ops[n + 4], hc.ops[n + 5], hc.ops[n + 6] = name, 'rec', rec\n"
    /* The entry's id and whether this op ends it come at hc_flush(). */
    "  local r = {1, hc.seq, '', 1}\n"
    "  hc.res[#hc.res + 1] = r\n"
    "  return r\n"
    "end\n"
    "\n"
    /* An assignment for a host's agent (op, key, gen) on its stream, now or
     * (a batch) at hc_flush(): one entry per stream holding the call's
     * assignments for that host in order (hostlink.c reads several). */
    "local function hc_assign(hc, stream, op, key, gen)\n"
    "  if not hc.asg then\n"
    "    return redis.call('XADD', stream, '*', 'op', op, 'key', key, 'gen', gen)\n"
    "  end\n"
    "  local m = hc.asg[stream]\n"
    "  if not m then\n"
    "    m = {}\n"
    "    hc.asg[stream] = m\n"
    "    hc.asg[#hc.asg + 1] = stream\n"
    "  end\n"
    "  local n = #m\n"
    "  m[n + 1], m[n + 2], m[n + 3], m[n + 4], m[n + 5], m[n + 6] =\n"
    "    'op', op, 'key', key, 'gen', gen\n"
    "end\n"
    "\n"
    /* SADD set member, now or (a batch) at hc_flush(). */
    "local function hc_sadd(hc, set, member)\n"
    "  if not hc.adds then return redis.call('SADD', set, member) end\n"
    "  local m = hc.adds[set]\n"
    "  if not m then\n"
    "    m = {}\n"
    "    hc.adds[set] = m\n"
    "    hc.adds[#hc.adds + 1] = set\n"
    "  end\n"
    "  m[#m + 1] = member\n"
    "end\n"
    "\n"
    /* The record of `host` (through the cache hc) when it is at `epoch`
     * (the replica's view) and takes groups: ready, or cordoned for a
     * group that stays (`stays`); else nil and the refusal. */
    "local function host_at(hc, host, epoch, stays)\n"
    "  local h = hc_get(hc, host)\n"
    "  if not h then\n"
    "    return nil, {0, 'host', 'host ' .. host .. ' does not exist'}\n"
    "  end\n"
    "  if h.epoch ~= epoch then\n"
    "    return nil, {0, 'host', 'host ' .. host .. ' changed since it was chosen'}\n"
    "  end\n"
    "  if h.state ~= 0 and not (stays and h.state == 1) then\n"
    "    return nil, {0, 'state', 'host ' .. host .. ' is not ready'}\n"
    "  end\n"
    "  return h, nil\n"
    "end\n"
    "\n"
    /* KEYS: hosts, groups, log, seq, hostgroups:NEW, assign:NEW,
     *       hostgroups:OLD, assign:OLD (the new host's again for a new group),
     *       documents (a document kept while the group was not placed goes:
     *       the group record holds it now).
     * ARGV: key, new host, expected generation (0: must not exist), group
     *       record (already carrying generation + 1), log max len,
     *       millicores, memory MiB, GPUs (the record's demand, so the record
     *       need not be decoded here), host epoch the replica saw, and
     *       optionally the record the change log carries (the same without
     *       the group's document, which replicas never need; absent: the
     *       record itself). */
    "local function place_in(hc, keys, args)\n"
    "  local key, host = args[1], args[2]\n"
    "  local expect = tonumber(args[3]) or -1\n"
    "  local old, refusal = group_at(keys[2], key, expect, hc.g)\n"
    "  if refusal then return refusal end\n"
    "  local same = old ~= nil and old.host == host\n"
    "  local h\n"
    "  h, refusal = host_at(hc, host, tonumber(args[9]), same)\n"
    "  if refusal then return refusal end\n"
    "  local mc, mem, gpu = tonumber(args[6]), tonumber(args[7]), tonumber(args[8])\n"
    "  local umc, umem, ugpu, ng = h.used_mc, h.used_mem, h.used_gpu, h.groups\n"
    "  if same then\n"
    "    umc, umem, ugpu, ng = umc - old.mc, umem - old.mem, ugpu - old.gpu_count, ng - 1\n"
    "  end\n"
    "  if umc + mc > h.cores * 1000 or umem + mem > h.mem or\n"
    "     ugpu + gpu > (h.gpu_count or 0) or\n"
    "     (ng > 0 and bit.band(h.features or 0, 2) ~= 0) then\n"
    "    return {0, 'capacity', 'host ' .. host .. ' lacks the free capacity'}\n"
    "  end\n"
    "  h.used_mc, h.used_mem, h.used_gpu, h.groups = umc + mc, umem + mem, ugpu + gpu, ng + 1\n"
    "  hc_dirty(hc, host)\n"
    "  if old and not same then\n"
    "    local o = hc_get(hc, old.host)\n"
    "    if o then\n"
    "      o.used_mc, o.used_mem, o.used_gpu, o.groups =\n"
    "        o.used_mc - old.mc, o.used_mem - old.mem, o.used_gpu - old.gpu_count, o.groups - 1\n"
    "      hc_dirty(hc, old.host)\n"
    "    end\n"
    "    redis.call('SREM', keys[7], key)\n"
    "    hc_assign(hc, keys[8], 'release', key, expect)\n"
    "  end\n"
    "  if hc.g then\n"
    "    hc.g[key] = args[4]\n"
    "    hc.gw[#hc.gw + 1] = key\n"
    "    hc.gw[#hc.gw + 1] = args[4]\n"
    "  else\n"
    "    redis.call('HSET', keys[2], key, args[4])\n"
    "  end\n"
    "  if not old and hc.docs ~= false then redis.call('HDEL', keys[9], key) end\n"
    "  if not same then hc_sadd(hc, keys[5], key) end\n"
    "  hc_assign(hc, keys[6], 'place', key, expect + 1)\n"
    "  return hc_log(hc, keys[3], keys[4], args[5], 'place', key, args[10] or args[4])\n"
    "end\n"
    "\n"
    "local function place(keys, args)\n"
    "  local hc = hc_new(keys[1])\n"
    "  local r = place_in(hc, keys, args)\n"
    "  hc_flush(hc)\n"
    "  return r\n"
    "end\n"
    "\n"
    /* KEYS: hosts, groups, log, seq, hostgroups:HOST, assign:HOST,
     *       documents.
     * ARGV: key, expected generation, log max len, '1' to keep the group's
     *       document in KEYS[7] (a stopped group the caller starts again
     *       later), else '0'. */
    "local function release(keys, args)\n"
    "  local key = args[1]\n"
    "  local raw = redis.call('HGET', keys[2], key)\n"
    "  if not raw then\n"
    "    return {0, 'missing', 'container group ' .. key .. ' does not exist'}\n"
    "  end\n"
    "  local old = mp_unpack(raw)\n"
    "  old.gpu_count = old.gpu_count or 0\n"
    "  if old.gen ~= tonumber(args[2]) then\n"
    "    return {0, 'generation', 'container group ' .. key .. ' is at generation ' ..\n"
    "            old.gen .. ', not ' .. args[2]}\n"
    "  end\n"
    "  local hraw = redis.call('HGET', keys[1], old.host)\n"
    "  if hraw then\n"
    "    local h = mp_unpack(hraw)\n"
    "    h.used_mc, h.used_mem, h.used_gpu, h.groups =\n"
    "      h.used_mc - old.mc, h.used_mem - old.mem, h.used_gpu - old.gpu_count, h.groups - 1\n"
    "    redis.call('HSET', keys[1], old.host, mp_pack(h))\n"
    "  end\n"
    "  redis.call('HDEL', keys[2], key)\n"
    "  redis.call('SREM', keys[5], key)\n"
    "  if args[4] == '1' and old.spec then redis.call('HSET', keys[7], key, old.spec) end\n"
    "  redis.call('XADD', keys[6], '*', 'op', 'release', 'key', key, 'gen', old.gen)\n"
    "  return log_append(keys[3], keys[4], args[3], 'release', key, '')\n"
    "end\n"
    "\n"
    /* KEYS: hosts, groups, log, seq, hostgroups:HOST, assign:HOST,
     *       evictions, documents.
     * ARGV: key, host, record (generation E + 1), log max len, millicores,
     *       memory MiB, GPUs (the record's demand), host epoch the replica
     *       saw, number of victims N, then N pairs: victim key, victim
     *       generation (each victim named once), then E: the group's
     *       generation (0: a new group).
     * Places a group on HOST by evicting Spot groups there, all or
     * nothing: the group must be at generation E (not exist for 0; a
     * redeployed group must be on HOST, whose room then includes the
     * group's old allocation), HOST must be ready at that epoch (or
     * cordoned, for a redeploy), every victim must still be a Spot group
     * (priority 2) on HOST at its generation, and HOST must have the room
     * once they are gone.  Each
     * victim is released exactly as by release() (record, host set, a
     * release for HOST's agent, a logged 'release') and its eviction
     * recorded in KEYS[7] (victim key -> JSON {host, by, time}, time in ms
     * by Redis's clock as a decimal string), its document kept in KEYS[8]
     * beside the eviction record; then the group is placed as
     * by place() (logged 'place').  Refusals: 'generation', 'host',
     * 'state', 'victim', 'capacity'. */
    "local function preempt(keys, args)\n"
    "  local key, host = args[1], args[2]\n"
    "  local n = tonumber(args[9])\n"
    "  local expect = tonumber(args[10 + 2 * n]) or -1\n"
    "  local old, refusal = group_at(keys[2], key, expect)\n"
    "  if refusal then return refusal end\n"
    "  if old and old.host ~= host then\n"
    "    return {0, 'host', 'container group ' .. key .. ' is not on host ' .. host}\n"
    "  end\n"
    "  local h\n"
    "  h, refusal = host_at(hc_new(keys[1]), host, tonumber(args[8]), old ~= nil)\n"
    "  if refusal then return refusal end\n"
    "  local umc, umem, ugpu, ng = h.used_mc, h.used_mem, h.used_gpu, h.groups\n"
    "  if old then\n"
    "    umc, umem, ugpu, ng = umc - old.mc, umem - old.mem, ugpu - old.gpu_count, ng - 1\n"
    "  end\n"
    "  local victims, seen = {}, {}\n"
    "  for i = 1, n do\n"
    "    local vkey, vgen = args[8 + 2 * i], tonumber(args[9 + 2 * i])\n"
    "    if seen[vkey] or vkey == key then\n"
    "      return {0, 'victim', 'container group ' .. vkey .. ' is named twice'}\n"
    "    end\n"
    "    seen[vkey] = true\n"
    "    local vraw = redis.call('HGET', keys[2], vkey)\n"
    "    if not vraw then\n"
    "      return {0, 'victim', 'container group ' .. vkey .. ' is gone'}\n"
    "    end\n"
    "    local v = mp_unpack(vraw)\n"
    "    if v.gen ~= vgen or v.host ~= host or v.priority ~= 2 then\n"
    "      return {0, 'victim', 'container group ' .. vkey .. ' changed since it was chosen'}\n"
    "    end\n"
    "    v.gpu_count = v.gpu_count or 0\n"
    "    umc, umem, ugpu, ng = umc - v.mc, umem - v.mem, ugpu - v.gpu_count, ng - 1\n"
    "    victims[i] = {vkey, v}\n"
    "  end\n"
    "  local mc, mem, gpu = tonumber(args[5]), tonumber(args[6]), tonumber(args[7])\n"
    "  if umc + mc > h.cores * 1000 or umem + mem > h.mem or\n"
    "     ugpu + gpu > (h.gpu_count or 0) or\n"
    "     (ng > 0 and bit.band(h.features or 0, 2) ~= 0) then\n"
    "    return {0, 'capacity', 'host ' .. host .. ' lacks the room even without the victims'}\n"
    "  end\n"
    "  h.used_mc, h.used_mem, h.used_gpu, h.groups = umc + mc, umem + mem, ugpu + gpu, ng + 1\n"
    "  redis.call('HSET', keys[1], host, mp_pack(h))\n"
    "  local t = redis.call('TIME')\n"
    "  local now = string.format('%d%03d', t[1], math.floor(tonumber(t[2]) / 1000))\n"
    "  for i = 1, n do\n"
    "    local vkey, v = victims[i][1], victims[i][2]\n"
    "    redis.call('HDEL', keys[2], vkey)\n"
    "    redis.call('SREM', keys[5], vkey)\n"
    "    redis.call('XADD', keys[6], '*', 'op', 'release', 'key', vkey, 'gen', v.gen)\n"
    "    redis.call('HSET', keys[7], vkey,\n"
    "               cjson.encode({host = host, by = key, time = now}))\n"
    "    if v.spec then redis.call('HSET', keys[8], vkey, v.spec) end\n"
    "    log_append(keys[3], keys[4], args[4], 'release', vkey, '')\n"
    "  end\n"
    "  redis.call('HSET', keys[2], key, args[3])\n"
    "  redis.call('SADD', keys[5], key)\n"
    "  if not old then redis.call('HDEL', keys[8], key) end\n"
    "  redis.call('XADD', keys[6], '*', 'op', 'place', 'key', key, 'gen', expect + 1)\n"
    "  return log_append(keys[3], keys[4], args[4], 'place', key, args[11 + 2 * n] or args[3])\n"
    "end\n"
    "\n"
    /* KEYS: skus, log, seq.  ARGV: name, record, log max len.  A record
     * equal to the one held changes nothing and logs nothing: host puts
     * send their SKU every time. */
    "local function sku_put(keys, args)\n"
    "  if redis.call('HGET', keys[1], args[1]) == args[2] then\n"
    "    return {1, 0, ''}\n"
    "  end\n"
    "  redis.call('HSET', keys[1], args[1], args[2])\n"
    "  return log_append(keys[2], keys[3], args[3], 'sku', args[1], args[2])\n"
    "end\n"
    "\n"
    /* KEYS: meta, log, seq.  A setting of the cell's in meta's `field`,
     * logged as op `field`; a record equal to the one held changes nothing
     * and logs nothing.  limits_put's ARGV: limits record, log max len: the
     * cell's per-group limits, in field "limits"; subnets_put's the same
     * with the subnet table (JSON), in field "subnets". */
    "local function meta_put(keys, field, record, maxlen)\n"
    "  if redis.call('HGET', keys[1], field) == record then\n"
    "    return {1, 0, ''}\n"
    "  end\n"
    "  redis.call('HSET', keys[1], field, record)\n"
    "  return log_append(keys[2], keys[3], maxlen, field, '', record)\n"
    "end\n"
    "\n"
    "local function limits_put(keys, args)\n"
    "  return meta_put(keys, 'limits', args[1], args[2])\n"
    "end\n"
    "\n"
    "local function subnets_put(keys, args)\n"
    "  return meta_put(keys, 'subnets', args[1], args[2])\n"
    "end\n"
    "\n"
    /* KEYS: meta, log, seq.  ARGV: policy name, log max len.  The cell's
     * sandbox policy, in meta's field "sandbox", logged as op 'sandbox'. */
    "local function sandbox_put(keys, args)\n"
    "  if args[1] ~= 'none' and args[1] ~= 'all' then\n"
    "    return {0, 'invalid', 'the sandbox policy must be none or all'}\n"
    "  end\n"
    "  return meta_put(keys, 'sandbox', args[1], args[2])\n"
    "end\n"
    "\n"
    /* KEYS: groups, assign:HOST.  ARGV: key, host, expected generation.
     * Asks the group's agent to restart every container in place. */
    "local function restart(keys, args)\n"
    "  local raw = redis.call('HGET', keys[1], args[1])\n"
    "  if not raw then\n"
    "    return {0, 'missing', 'container group ' .. args[1] .. ' does not exist'}\n"
    "  end\n"
    "  local g = mp_unpack(raw)\n"
    "  if g.host ~= args[2] or g.gen ~= tonumber(args[3]) then\n"
    "    return {0, 'generation', 'container group ' .. args[1] .. ' changed'}\n"
    "  end\n"
    "  local id = redis.call('XADD', keys[2], '*', 'op', 'restart', 'key', args[1],\n"
    "                        'gen', g.gen)\n"
    "  return {1, 0, id}\n"
    "end\n"
    "\n"
    /* KEYS: groups, views (or metrics).  ARGV: key, host, generation, view
     * (JSON).  Only the agent of the host that holds the group, at that
     * generation, writes its view (or its usage metrics): a late write from
     * a host the group left changes nothing. */
    "local function view_put(keys, args)\n"
    "  local raw = redis.call('HGET', keys[1], args[1])\n"
    "  if not raw then\n"
    "    return {0, 'missing', 'container group ' .. args[1] .. ' does not exist'}\n"
    "  end\n"
    "  local g = mp_unpack(raw)\n"
    "  if g.host ~= args[2] or g.gen ~= tonumber(args[3]) then\n"
    "    return {0, 'stale', 'container group ' .. args[1] .. ' is at generation ' ..\n"
    "            g.gen .. ' on ' .. g.host}\n"
    "  end\n"
    "  redis.call('HSET', keys[2], args[1], args[4])\n"
    "  return {1, 0, ''}\n"
    "end\n"
    "\n"
    /* KEYS: groups, views (or metrics).  ARGV: key, host.  Drops the view
     * (or the usage metrics) host HOST wrote, unless the group is (again)
     * on HOST. */
    "local function view_del(keys, args)\n"
    "  local raw = redis.call('HGET', keys[1], args[1])\n"
    "  if raw and mp_unpack(raw).host == args[2] then\n"
    "    return {0, 'owned', 'container group ' .. args[1] .. ' is on ' .. args[2]}\n"
    "  end\n"
    "  local v = redis.call('HGET', keys[2], args[1])\n"
    "  if v then\n"
    "    local ok, d = pcall(cjson.decode, v)\n"
    "    if not ok or type(d) ~= 'table' or d.host == args[2] then\n"
    "      redis.call('HDEL', keys[2], args[1])\n"
    "    end\n"
    "  end\n"
    "  return {1, 0, ''}\n"
    "end\n"
    "\n"
/* KEYS: hosts, log, seq, alive:HOST, agents.  ARGV: host, now (ms), ttl
     * (ms), log max len.  Renews the heartbeat and counts the host among the
     * agents' (alive key first, so that no expiry sweep sees an agent
     * without one); a host marked down because its heartbeat had expired is
     * ready again, with the change logged. */
    "local function heartbeat(keys, args)\n"
    "  redis.call('SET', keys[4], args[2], 'PX', args[3])\n"
    "  redis.call('SADD', keys[5], args[1])\n"
    "  local raw = redis.call('HGET', keys[1], args[1])\n"
    "  if not raw then return {1, 0, ''} end\n"
    "  local h = mp_unpack(raw)\n"
    "  if h.state ~= 2 then return {1, 0, ''} end\n"
    "  h.state = 0\n"
    "  local rec = mp_pack(h)\n"
    "  redis.call('HSET', keys[1], args[1], rec)\n"
    "  return log_append(keys[2], keys[3], args[4], 'host', args[1], rec)\n"
    "end\n"
    "\n"
    /* KEYS: hosts, groups, views, log, seq, hostgroups:HOST, assign:HOST,
     *       poolmembers:POOL.
     * ARGV: member key, new key, host, member generation, member runtime
     *       digest (the hex text its view carries), new record (generation
     *       1, naming the member as its runtime), log max len, millicores,
     *       memory MiB, GPUs (the new record's demand), and optionally the
     *       record the change log carries (without the document).
     * Claims a ready standby-pool member (pool.c) for a new group: the
     * member's allocation on HOST becomes the new group's, the member's
     * record, set memberships and view vanish, the new group's record takes
     * their place and HOST's agent is told to place it (it adopts the
     * member's runtime group; no release is sent for the member).  Logged
     * as a release of the member then a place of the new group, so that
     * replicas converge with the ops they already know.  A member that is
     * not Succeeded at its generation on HOST is refused ('busy'). */
    "local function claim(keys, args)\n"
    "  local member, key, host = args[1], args[2], args[3]\n"
    "  local raw = redis.call('HGET', keys[2], member)\n"
    "  if not raw then\n"
    "    return {0, 'missing', 'standby member ' .. member .. ' does not exist'}\n"
    "  end\n"
    "  local m = mp_unpack(raw)\n"
    "  m.gpu_count = m.gpu_count or 0\n"
    "  if m.host ~= host or m.gen ~= tonumber(args[4]) then\n"
    "    return {0, 'generation', 'standby member ' .. member .. ' changed'}\n"
    "  end\n"
    "  if redis.call('HEXISTS', keys[2], key) == 1 then\n"
    "    return {0, 'exists', 'container group ' .. key .. ' already exists'}\n"
    "  end\n"
    "  local vraw = redis.call('HGET', keys[3], member)\n"
    "  local ready = false\n"
    "  if vraw then\n"
    "    local ok, v = pcall(cjson.decode, vraw)\n"
    "    ready = ok and type(v) == 'table' and v.host == host and\n"
    "            v.generation == m.gen and v.digest == args[5] and\n"
    "            v.provisioningState == 'Succeeded'\n"
    "  end\n"
    "  if not ready then\n"
    "    return {0, 'busy', 'standby member ' .. member .. ' is not ready'}\n"
    "  end\n"
    "  local hraw = redis.call('HGET', keys[1], host)\n"
    "  if not hraw then\n"
    "    return {0, 'host', 'host ' .. host .. ' does not exist'}\n"
    "  end\n"
    "  local h = mp_unpack(hraw)\n"
    "  if h.state ~= 0 then\n"
    "    return {0, 'state', 'host ' .. host .. ' is not ready'}\n"
    "  end\n"
    "  local umc = h.used_mc - m.mc + tonumber(args[8])\n"
    "  local umem = h.used_mem - m.mem + tonumber(args[9])\n"
    "  local ugpu = h.used_gpu - m.gpu_count + tonumber(args[10])\n"
    "  if umc > h.cores * 1000 or umem > h.mem or ugpu > (h.gpu_count or 0) then\n"
    "    return {0, 'capacity', 'host ' .. host .. ' lacks the free capacity'}\n"
    "  end\n"
    "  h.used_mc, h.used_mem, h.used_gpu = umc, umem, ugpu\n"
    "  redis.call('HSET', keys[1], host, mp_pack(h))\n"
    "  redis.call('HDEL', keys[2], member)\n"
    "  redis.call('HSET', keys[2], key, args[6])\n"
    "  redis.call('SREM', keys[6], member)\n"
    "  redis.call('SADD', keys[6], key)\n"
    "  redis.call('SREM', keys[8], member)\n"
    "  redis.call('HDEL', keys[3], member)\n"
    "  redis.call('XADD', keys[7], '*', 'op', 'place', 'key', key, 'gen', 1)\n"
    "  log_append(keys[4], keys[5], args[7], 'release', member, '')\n"
    "  return log_append(keys[4], keys[5], args[7], 'place', key, args[11] or args[6])\n"
    "end\n"
    "\n"
    /* EFFECTS.  A caller's own records written in the same atomic step as
     * a change of the cell (berth.h, "Effects").  The *_fx Functions take
     * the plain Function's KEYS, then one key per effect; its ARGV, then
     * four per effect (op, field, value, n), then the number of effects.
     * Guards ('expect': the field's SHA-1 is `value`, or the field is
     * absent for ''; 'claim': the field is absent or equals `value`) are
     * checked before anything is written; the Function itself then checks
     * and writes; only when it applied do the writes follow.  A failing
     * guard answers {0, 'changed'|'taken', message, index}. */
    "local function fx_split(keys, args, nkeys)\n"
    "  local ne = tonumber(args[#args]) or -1\n"
    "  local base = #args - 1 - 4 * ne\n"
    "  if ne < 0 or base < 0 or #keys ~= nkeys + ne then return nil end\n"
    "  local fa = {}\n"
    "  for i = 1, base do fa[i] = args[i] end\n"
    "  return fa, base, ne\n"
    "end\n"
    "\n"
    "local FX_KIND = {hset = 'hash', hdel = 'hash', hincrby = 'hash', expect = 'hash',\n"
    "                 claim = 'hash', unclaim = 'hash', zadd = 'zset', zrem = 'zset'}\n"
    "local function fx_check(keys, args, nkeys, base, ne)\n"
    "  local kinds, cleared, fields, was = {}, {}, {}, {}\n"
    "  local function field_now(key, field)\n"
    "    local v = fields[key .. '\\n' .. field]\n"
    "    if v ~= nil then return v end\n"
    "    if cleared[key] or kinds[key] ~= 'hash' then return false end\n"
    "    return redis.call('HGET', key, field)\n"
    "  end\n"
    "  for i = 1, ne do\n"
    "    local a = base + 4 * (i - 1)\n"
    "    local op, key, field, value, n = args[a + 1], keys[nkeys + i], args[a + 2],\n"
    "                                     args[a + 3], args[a + 4]\n"
    /* `was`: each key's type before the commit (one TYPE per key), which
     * the guards read; `kinds`: its type once the effects so far apply. */
    "    if was[key] == nil then\n"
    "      was[key] = redis.call('TYPE', key)['ok']\n"
    "      kinds[key] = was[key]\n"
    "    end\n"
    "    local want = FX_KIND[op]\n"
    "    if want and kinds[key] ~= 'none' and kinds[key] ~= want then\n"
    "      return {0, 'invalid', 'effect on a ' .. kinds[key] .. ' key, not a ' .. want, i}\n"
    "    end\n"
    "    local fk = key .. '\\n' .. (field or '')\n"
    "    if op == 'expect' then\n"
    "      local cur = was[key] == 'hash' and redis.call('HGET', key, field)\n"
    "      if (value == '' and cur) or (value ~= '' and (not cur or redis.sha1hex(cur) ~= value)) then\n"
    "        return {0, 'changed', field .. ' changed since it was read', i}\n"
    "      end\n"
    "    elseif op == 'claim' then\n"
    "      local cur = was[key] == 'hash' and redis.call('HGET', key, field)\n"
    "      if cur and cur ~= value then\n"
    "        return {0, 'taken', field .. ' is held by ' .. cur, i}\n"
    "      end\n"
    "      fields[fk] = value\n"
    "    elseif op == 'hset' then\n"
    "      fields[fk] = value\n"
    "    elseif op == 'hdel' then\n"
    "      fields[fk] = false\n"
    "    elseif op == 'unclaim' then\n"
    "      if field_now(key, field) == value then fields[fk] = false end\n"
    "    elseif op == 'hincrby' then\n"
    "      local cur, v = field_now(key, field), 0\n"
    "      if cur then\n"
    "        if #cur > 19 or not string.match(cur, '^%-?%d+$') then\n"
    "          return {0, 'invalid', field .. ' holds no integer', i}\n"
    "        end\n"
    "        v = tonumber(cur)\n"
    "      end\n"
    "      local d = tonumber(n)\n"
    "      if math.abs(v) + math.abs(d) >= 2 ^ 62 then\n"
    "        return {0, 'invalid', field .. ' would leave 62 bits', i}\n"
    "      end\n"
    "      v = v + d\n"
    "      if v > 0 then fields[fk] = string.format('%d', v) else fields[fk] = false end\n"
    "    elseif op == 'set' then\n"
    "      if tonumber(n) > 1e15 then\n"
    "        return {0, 'invalid', 'an expiry of ' .. n .. ' s is too far', i}\n"
    "      end\n"
    "    end\n"
    "    if op == 'set' then\n"
    "      kinds[key] = 'string'\n"
    "    elseif op == 'del' then\n"
    "      kinds[key], cleared[key] = 'none', true\n"
    "    elseif op == 'hset' or op == 'claim' or op == 'hincrby' then\n"
    "      kinds[key] = 'hash'\n"
    "    elseif op == 'zadd' then\n"
    "      kinds[key] = 'zset'\n"
    "    end\n"
    "    if op == 'set' or op == 'del' then\n"
    "      for k in pairs(fields) do\n"
    "        if string.sub(k, 1, #key + 1) == key .. '\\n' then fields[k] = nil end\n"
    "      end\n"
    "      cleared[key] = true\n"
    "    end\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    "\n"
    "local function fx_apply(keys, args, nkeys, base, ne)\n"
    "  for i = 1, ne do\n"
    "    local a = base + 4 * (i - 1)\n"
    "    local op, key, field, value, n = args[a + 1], keys[nkeys + i], args[a + 2],\n"
    "                                     args[a + 3], args[a + 4]\n"
    "    if op == 'hset' or op == 'claim' then redis.call('HSET', key, field, value)\n"
    "    elseif op == 'hdel' then redis.call('HDEL', key, field)\n"
    "    elseif op == 'unclaim' then\n"
    "      if redis.call('HGET', key, field) == value then redis.call('HDEL', key, field) end\n"
    "    elseif op == 'zadd' then redis.call('ZADD', key, 0, field)\n"
    "    elseif op == 'zrem' then redis.call('ZREM', key, field)\n"
    "    elseif op == 'hincrby' then\n"
    "      if redis.call('HINCRBY', key, field, n) <= 0 then redis.call('HDEL', key, field) end\n"
    "    elseif op == 'set' then\n"
    "      if tonumber(n) > 0 then redis.call('SET', key, value, 'EX', n)\n"
    "      else redis.call('SET', key, value) end\n"
    "    elseif op == 'del' then redis.call('DEL', key)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "\n"
    "local function with_effects(fn, nkeys)\n"
    "  return function(keys, args)\n"
    "    local fa, base, ne = fx_split(keys, args, nkeys)\n"
    "    if not fa then return {0, 'invalid', 'effects are malformed'} end\n"
    "    local refusal = fx_check(keys, args, nkeys, base, ne)\n"
    "    if refusal then return refusal end\n"
    "    local r = fn(keys, fa)\n"
    "    if r[1] == 1 then fx_apply(keys, args, nkeys, base, ne) end\n"
    "    return r\n"
    "  end\n"
    "end\n"
    "\n"
    /* KEYS: hosts, groups, log, seq, documents, then for each placement
     *       hostgroups:NEW, assign:NEW, hostgroups:OLD, assign:OLD and one
     *       key per effect of its own.
     * ARGV: N, log max len, then for each placement place()'s ARGV but
     *       the log max len (key, new host, expected generation, record,
     *       millicores, memory MiB, GPUs, host epoch, the log's record),
     *       the number E of its effects, and four per effect (op, field,
     *       value, n: berth.h, "Effects").
     * N placements in one call, in order, each its own commit: its guards
     * checked, then re-checked and applied or refused exactly as place()
     * would, then its effects written when it applied (a later placement
     * sees what the earlier ones did); each host record is decoded and
     * written once.  The call's applied placements make ONE change-log
     * entry: 'seq' (the first one's), then op, name and rec for each, in
     * order.  Answers N answers in order: place()'s or a guard's refusals,
     * and for an applied one {1, seq, entry id, last}, last 1 on the
     * entry's final op (a replica that applies its own commits moves past
     * the entry only then). */
    "local function place_many(keys, args)\n"
    "  local n = tonumber(args[1]) or -1\n"
    "  if n < 0 or n > 1024 then return {0, 'invalid', 'a batch of placements is malformed'} end\n"
    /* Where each placement's keys and arguments start, checked whole
     * before anything is read or written. */
    "  local ks, as, ne = {}, {}, {}\n"
    "  local k, a = 5, 2\n"
    "  for i = 1, n do\n"
    "    local e = tonumber(args[a + 10])\n"
    "    if not e or e < 0 or e > 32 then\n"
    "      return {0, 'invalid', 'a batch of placements is malformed'}\n"
    "    end\n"
    "    ks[i], as[i], ne[i] = k, a, e\n"
    "    k, a = k + 4 + e, a + 10 + 4 * e\n"
    "  end\n"
    "  if #keys ~= k or #args ~= a then\n"
    "    return {0, 'invalid', 'a batch of placements is malformed'}\n"
    "  end\n"
    "  local hc, out = hc_new(keys[1]), {}\n"
    "  hc.seq_key, hc.adds, hc.ops, hc.res, hc.gw, hc.asg = keys[4], {}, {}, {}, {}, {}\n"
    "  hc.groups, hc.log, hc.maxlen = keys[2], keys[3], args[2]\n"
    "  hc.seq0 = tonumber(redis.call('GET', keys[4]) or '0')\n"
    "  hc.seq = hc.seq0\n"
    "  hc.docs = redis.call('EXISTS', keys[5]) == 1\n"
    "  hc.g = {}\n"
    "  if n > 0 then\n"
    "    local names = {}\n"
    "    for i = 1, n do names[i] = args[as[i] + 1] end\n"
    "    local raws = redis.call('HMGET', keys[2], unpack(names))\n"
    "    for i = 1, n do\n"
    "      if hc.g[names[i]] == nil then hc.g[names[i]] = raws[i] end\n"
    "    end\n"
    "  end\n"
    /* place()'s KEYS and ARGV for each placement, in two tables made once
     * (place_in() keeps none of them). */
    "  local kt = {keys[1], keys[2], keys[3], keys[4], '', '', '', '', keys[5]}\n"
    "  local at = {'', '', '', '', args[2], '', '', '', '', ''}\n"
    "  for i = 1, n do\n"
    "    local k, a = ks[i], as[i]\n"
    "    local refusal = ne[i] > 0 and fx_check(keys, args, k + 4, a + 10, ne[i])\n"
    "    if refusal then\n"
    "      out[i] = refusal\n"
    "    else\n"
    "      kt[5], kt[6], kt[7], kt[8] = keys[k + 1], keys[k + 2], keys[k + 3], keys[k + 4]\n"
    "      at[1], at[2], at[3], at[4] = args[a + 1], args[a + 2], args[a + 3], args[a + 4]\n"
    "      at[6], at[7], at[8], at[9], at[10] =\n"
    "        args[a + 5], args[a + 6], args[a + 7], args[a + 8], args[a + 9]\n"
    "      out[i] = place_in(hc, kt, at)\n"
    "      if out[i][1] == 1 and ne[i] > 0 then fx_apply(keys, args, k + 4, a + 10, ne[i]) end\n"
    "    end\n"
    "  end\n"
    "  hc_flush(hc)\n"
    "  return out\n"
    "end\n"
    "\n"
    /* KEYS: groups.  ARGV: key, expected generation ('': any, '0': the
     * group must not exist).  Effects only, guarded by the group's
     * generation. */
    "local function records(keys, args)\n"
    "  if args[2] ~= '' then\n"
    "    local raw = redis.call('HGET', keys[1], args[1])\n"
    "    local gen = raw and mp_unpack(raw).gen or 0\n"
    "    if gen ~= tonumber(args[2]) then\n"
    "      return {0, 'generation', 'container group ' .. args[1] .. ' is at generation ' ..\n"
    "              gen .. ', not ' .. args[2]}\n"
    "    end\n"
    "  end\n"
    "  return {1, 0, ''}\n"
    "end\n"
    "\n"
    "redis.register_function('berth_sku_put', sku_put)\n"
    "redis.register_function('berth_limits_put', limits_put)\n"
    "redis.register_function('berth_subnets_put', subnets_put)\n"
    "redis.register_function('berth_sandbox_put', sandbox_put)\n"
    "redis.register_function('berth_place_fx', with_effects(place, 9))\n"
    "redis.register_function('berth_release_fx', with_effects(release, 7))\n"
    "redis.register_function('berth_preempt_fx', with_effects(preempt, 8))\n"
    "redis.register_function('berth_restart_fx', with_effects(restart, 2))\n"
    "redis.register_function('berth_claim_fx', with_effects(claim, 8))\n"
    "redis.register_function('berth_records', with_effects(records, 1))\n"
    "redis.register_function('berth_host_put', host_put)\n"
    "redis.register_function('berth_host_state', host_state)\n"
    "redis.register_function('berth_host_del', host_del)\n"
    "redis.register_function('berth_place', place)\n"
    "redis.register_function('berth_place_many', place_many)\n"
    "redis.register_function('berth_release', release)\n"
    "redis.register_function('berth_preempt', preempt)\n"
    "redis.register_function('berth_restart', restart)\n"
    "redis.register_function('berth_view_put', view_put)\n"
    "redis.register_function('berth_view_del', view_del)\n"
    "redis.register_function('berth_heartbeat', heartbeat)\n"
    "redis.register_function('berth_claim', claim)\n";
