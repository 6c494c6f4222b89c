--[[
  KEYS: log; ARGV: base, identity ('' = all), sinceMs ('' = none), untilMs ('' = none; > 0),
  limit, order, maxAgeMs → stream entries within both retention bounds.
]]
--- @include "includes/now"
--- @include "includes/ms-text"

local base, identity, limit = ARGV[1], ARGV[2], tonumber(ARGV[5])
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return {} end
-- Entries older than the log's first (trimmed by count) or than maxAge are never answered.
local floor = math.max(0, now_ms() - tonumber(ARGV[7]))
if ARGV[3] ~= '' and tonumber(ARGV[3]) > floor then floor = tonumber(ARGV[3]) end
local start = ms_text(floor) .. '-0'
local first_ms, first_seq = string.match(first[1][1], '^(%d+)-(%d+)$')
if tonumber(first_ms) > floor or (tonumber(first_ms) == floor and tonumber(first_seq) > 0) then start = first[1][1] end
local stop = '+'
if ARGV[4] ~= '' then stop = '(' .. ARGV[4] .. '-0' end
local stream = KEYS[1]
if identity ~= '' then stream = base .. 'i:' .. identity end
if ARGV[6] == 'asc' then return redis.call('XRANGE', stream, start, stop, 'COUNT', limit) end
return redis.call('XREVRANGE', stream, stop, start, 'COUNT', limit)
