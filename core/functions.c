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
    "local function group_at(groups, key, expect)\n"
    "  local raw = redis.call('HGET', groups, key)\n"
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
    /* The record of `host` in the hash `hosts` when it is at `epoch` (the
     * replica's view) and takes groups: ready, or cordoned for a group
     * that stays (`stays`); else nil and the refusal. */
    "local function host_at(hosts, host, epoch, stays)\n"
    "  local hraw = redis.call('HGET', hosts, host)\n"
    "  if not hraw then\n"
    "    return nil, {0, 'host', 'host ' .. host .. ' does not exist'}\n"
    "  end\n"
    "  local h = mp_unpack(hraw)\n"
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
     *       hostgroups:OLD, assign:OLD (the new host's again for a new group).
     * ARGV: key, new host, expected generation (0: must not exist), group
     *       record (already carrying generation + 1), log max len,
     *       millicores, memory MiB, GPUs (the record's demand, so the record
     *       need not be decoded here), host epoch the replica saw. */
    "local function place(keys, args)\n"
    "  local key, host = args[1], args[2]\n"
    "  local expect = tonumber(args[3]) or -1\n"
    "  local old, refusal = group_at(keys[2], key, expect)\n"
    "  if refusal then return refusal end\n"
    "  local same = old ~= nil and old.host == host\n"
    "  local h\n"
    "  h, refusal = host_at(keys[1], host, tonumber(args[9]), same)\n"
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
    "  redis.call('HSET', keys[1], host, mp_pack(h))\n"
    "  if old and not same then\n"
    "    local oraw = redis.call('HGET', keys[1], old.host)\n"
    "    if oraw then\n"
    "      local o = mp_unpack(oraw)\n"
    "      o.used_mc, o.used_mem, o.used_gpu, o.groups =\n"
    "        o.used_mc - old.mc, o.used_mem - old.mem, o.used_gpu - old.gpu_count, o.groups - 1\n"
    "      redis.call('HSET', keys[1], old.host, mp_pack(o))\n"
    "    end\n"
    "    redis.call('SREM', keys[7], key)\n"
    "    redis.call('XADD', keys[8], '*', 'op', 'release', 'key', key, 'gen', expect)\n"
    "  end\n"
    "  redis.call('HSET', keys[2], key, args[4])\n"
    "  if not same then redis.call('SADD', keys[5], key) end\n"
    "  redis.call('XADD', keys[6], '*', 'op', 'place', 'key', key, 'gen', expect + 1)\n"
    "  return log_append(keys[3], keys[4], args[5], 'place', key, args[4])\n"
    "end\n"
    "\n"
    /* KEYS: hosts, groups, log, seq, hostgroups:HOST, assign:HOST.
     * ARGV: key, expected generation, log max len. */
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
    "  redis.call('XADD', keys[6], '*', 'op', 'release', 'key', key, 'gen', old.gen)\n"
    "  return log_append(keys[3], keys[4], args[3], 'release', key, '')\n"
    "end\n"
    "\n"
    /* KEYS: hosts, groups, log, seq, hostgroups:HOST, assign:HOST,
     *       evictions.
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
     * by Redis's clock as a decimal string); then the group is placed as
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
    "  h, refusal = host_at(keys[1], host, tonumber(args[8]), old ~= nil)\n"
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
    "    log_append(keys[3], keys[4], args[4], 'release', vkey, '')\n"
    "  end\n"
    "  redis.call('HSET', keys[2], key, args[3])\n"
    "  redis.call('SADD', keys[5], key)\n"
    "  redis.call('XADD', keys[6], '*', 'op', 'place', 'key', key, 'gen', expect + 1)\n"
    "  return log_append(keys[3], keys[4], args[4], 'place', key, args[3])\n"
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
    /* KEYS: groups, views.  ARGV: key, host, generation, view (JSON).
     * Only the agent of the host that holds the group, at that generation,
     * writes its view: a late write from a host the group left changes
     * nothing. */
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
    /* KEYS: groups, views.  ARGV: key, host.  Drops the view host HOST
     * wrote, unless the group is (again) on HOST. */
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
     *       memory MiB, GPUs (the new record's demand).
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
    "  return log_append(keys[4], keys[5], args[7], 'place', key, args[6])\n"
    "end\n"
    "\n"
    "redis.register_function('berth_sku_put', sku_put)\n"
    "redis.register_function('berth_host_put', host_put)\n"
    "redis.register_function('berth_host_state', host_state)\n"
    "redis.register_function('berth_host_del', host_del)\n"
    "redis.register_function('berth_place', place)\n"
    "redis.register_function('berth_release', release)\n"
    "redis.register_function('berth_preempt', preempt)\n"
    "redis.register_function('berth_restart', restart)\n"
    "redis.register_function('berth_view_put', view_put)\n"
    "redis.register_function('berth_view_del', view_del)\n"
    "redis.register_function('berth_heartbeat', heartbeat)\n"
    "redis.register_function('berth_claim', claim)\n";
