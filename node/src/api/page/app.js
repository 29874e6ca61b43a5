// Linli public disclosure page (公示): fetches /v1/disclosure and /v1/status and renders
// figures, tables and plain SVG charts. Money arrives as integer fen and is formatted as yuan
// only here. Every rendered figure carries data-* attributes with the raw value, so tests (and
// scrapers) read exactly what is shown. <body data-ready="true"> when done, data-error on failure.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = String(text);
  return e;
}

// Bilingual label: Chinese, then English in a muted span.
function label(zh, en) {
  return el('span', {}, el('span', { class: 'zh' }, zh), ' ', el('span', { class: 'en' }, en));
}

// Integer fen as yuan with two decimals, without floating point.
function yuan(fen) {
  const f = Math.trunc(Number(fen));
  const sign = f < 0 ? '-' : '';
  const a = Math.abs(f);
  return sign + Math.floor(a / 100).toLocaleString('en-US') + '.' + String(a % 100).padStart(2, '0');
}

function num(n) {
  return Number(n).toLocaleString('en-US');
}

function short(hex) {
  return hex ? hex.slice(0, 10) + '…' : '—';
}

function localTime(ms) {
  return new Date(ms).toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false });
}

function card(name, zh, en, value, text, unit, cls) {
  return el('div', { class: 'card ' + (cls || '') },
    el('div', { class: 'label' }, label(zh, en)),
    el('div', { class: 'value' },
      el('span', { 'data-figure': name, 'data-value': String(value) }, text),
      el('span', { class: 'unit' }, unit)));
}

function renderCards(d) {
  const t = d.totals, o = d.outstanding, tb = d.time_bank;
  const box = document.getElementById('cards');
  box.replaceChildren(
    card('outstanding-points', '未兑付积分', 'Points outstanding', o.points, num(o.points), '分 pts', 'liability'),
    card('outstanding-fen', '积分负债', 'Liability (value of outstanding points)', o.fen, '¥' + yuan(o.fen), '元 yuan', 'liability'),
    card('points-issued', '累计发放积分', 'Points issued', t.points_issued, num(t.points_issued), '分 pts'),
    card('points-redeemed', '累计兑换积分', 'Points redeemed', t.points_redeemed, num(t.points_redeemed), '分 pts'),
    card('points-paid', '商户消费积分', 'Points paid at merchants', t.points_paid, num(t.points_paid), '分 pts'),
    card('settled-fen', '商户结算金额', 'Merchant settlements', t.settled_fen, '¥' + yuan(t.settled_fen), '元 yuan'),
    card('minutes-earned', '时间银行存入', 'Time bank: minutes earned', tb.minutes_earned, num(tb.minutes_earned), '分钟 min'),
    card('minutes-spent', '时间银行支取', 'Time bank: minutes spent', tb.minutes_spent, num(tb.minutes_spent), '分钟 min'),
    card('minutes-held', '时间银行余额', 'Time bank: minutes held', tb.minutes_held, num(tb.minutes_held), '分钟 min'),
    card('residents', '登记居民', 'Residents enrolled', d.residents, num(d.residents), '人'),
    card('merchants', '合作商户', 'Merchants', d.merchants, num(d.merchants), '家'),
    card('awards', '志愿服务记录', 'Volunteer awards', t.awards, num(t.awards), '次'));
}

// Grouped bars per day of two series, e.g. points issued (red) and redeemed (blue).
// series: [[name, field of the day, colour, zh, en], ...]
function renderPerDay(boxId, chart, title, days, series) {
  const box = document.getElementById(boxId);
  if (!days.length) { box.replaceChildren(label('暂无数据', 'No data yet')); return; }
  const W = 1000, H = 280, left = 56, bottom = 40, top = 16;
  const max = Math.max(1, ...days.map(d => Math.max(...series.map(x => d[x[1]]))));
  const slot = (W - left - 8) / days.length, bar = Math.max(2, Math.min(28, slot / 2 - 3));
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-chart': chart });
  s.append(svg('title', {}, title));
  const y = v => top + (H - top - bottom) * (1 - v / max);
  for (let i = 0; i <= 4; i++) {
    const v = Math.round(max * i / 4);
    s.append(svg('line', { x1: left, x2: W, y1: y(v), y2: y(v), stroke: '#d9e2ec' }));
    s.append(svg('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 12, fill: '#66788a' }, num(v)));
  }
  days.forEach((d, i) => {
    const x0 = left + i * slot + slot / 2;
    series.forEach(([name, field, color, zh, en], k) => {
      const value = d[field], dx = k === 0 ? -bar - 1 : 1;
      const r = svg('rect', { x: x0 + dx, y: y(value), width: bar, height: Math.max(0, y(0) - y(value)), fill: color,
        'data-series': name, 'data-day': d.day, 'data-value': String(value) });
      r.append(svg('title', {}, `${d.day} ${zh} ${en}: ${value}`));
      s.append(r);
    });
    if (days.length <= 16 || i % Math.ceil(days.length / 16) === 0) {
      s.append(svg('text', { x: x0, y: H - bottom + 16, 'text-anchor': 'middle', 'font-size': 12, fill: '#66788a' }, d.day.slice(5)));
    }
  });
  const legend = el('div', { class: 'legend' }, ...series.map(([, , color, zh, en]) =>
    el('span', {}, el('i', { class: 'swatch', style: `background:${color}` }), label(zh, en))));
  box.replaceChildren(s, legend);
}

function renderDaily(days) {
  renderPerDay('daily-chart', 'daily', '每日积分发放与兑换 Points issued and redeemed per day', days,
    [['issued', 'points_issued', 'var(--issued)', '发放', 'issued'], ['redeemed', 'points_redeemed', 'var(--redeemed)', '兑换', 'redeemed']]);
}

// Time bank: minutes earned (served for others) and spent per day, on days with any.
function renderTimebank(days) {
  const active = days.filter(d => d.minutes_earned > 0 || d.minutes_spent > 0);
  renderPerDay('timebank-chart', 'timebank', '时间银行每日存入与支取 Time bank minutes earned and spent per day', active,
    [['minutes-earned', 'minutes_earned', 'var(--issued)', '存入', 'earned'], ['minutes-spent', 'minutes_spent', 'var(--redeemed)', '支取', 'spent']]);
}

// Horizontal bars of points per activity.
function renderActivities(list) {
  const box = document.getElementById('activity-chart');
  if (!list.length) { box.replaceChildren(label('暂无数据', 'No data yet')); return; }
  const W = 1000, row = 30, left = 300, H = list.length * row + 10;
  const max = Math.max(1, ...list.map(a => a.points));
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-chart': 'activities' });
  s.append(svg('title', {}, '按活动类型发放积分 Points issued by activity'));
  list.forEach((a, i) => {
    const y = 5 + i * row, w = (W - left - 120) * a.points / max;
    s.append(svg('text', { x: left - 8, y: y + 18, 'text-anchor': 'end', 'font-size': 13 }, a.label));
    s.append(svg('rect', { x: left, y: y + 4, width: Math.max(1, w), height: row - 10, fill: 'var(--issued)',
      'data-activity': a.activity, 'data-value': String(a.points), 'data-awards': String(a.awards) }));
    s.append(svg('text', { x: left + w + 6, y: y + 18, 'font-size': 13 }, `${num(a.points)} 分 · ${a.awards} 次`));
  });
  box.replaceChildren(s);
}

function table(id, head, rows) {
  const t = document.getElementById(id);
  t.replaceChildren(el('thead', {}, el('tr', {}, ...head.map(([zh, en, cls]) => el('th', { class: cls || '' }, label(zh, en))))),
    el('tbody', {}, ...rows));
}

function stars(level, max) {
  return el('span', { class: 'stars', 'data-stars': String(level) }, '★'.repeat(level) + '☆'.repeat(Math.max(0, max - level)));
}

function renderVolunteers(d) {
  document.getElementById('month').textContent = d.month;
  const max = d.rules ? d.rules.star_thresholds.length : 0;
  const rows = d.top_volunteers.map(v => el('tr', { 'data-volunteer': v.pseudonym, 'data-points': String(v.points) },
    el('td', {}, v.rank), el('td', {}, el('code', {}, v.pseudonym)),
    el('td', { class: 'num' }, num(v.points)), el('td', { class: 'num' }, v.awards),
    el('td', { class: 'num' }, num(v.minutes)), el('td', { class: 'num' }, num(v.lifetime_points)),
    el('td', {}, stars(v.star_level, max))));
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: 7 }, label('本月暂无记录', 'No awards this month yet'))));
  table('volunteers', [['排名', 'rank'], ['居民', 'resident'], ['本月积分', 'points this month', 'num'], ['次数', 'awards', 'num'],
    ['服务分钟', 'minutes', 'num'], ['累计积分', 'lifetime points', 'num'], ['星级', 'star level']], rows);
}

function renderSettlements(d) {
  const row = (kind) => s => el('tr', { ['data-' + kind]: s.name, 'data-fen': String(s.fen) },
    el('td', {}, s.name), el('td', { class: 'num' }, s.count), el('td', { class: 'num' }, num(s.points)),
    el('td', { class: 'num' }, '¥' + yuan(s.fen)));
  const none = () => [el('tr', {}, el('td', { colspan: 4 }, label('暂无结算', 'No settlements yet')))];
  const head = (zh, en) => [[zh, en], ['笔数', 'count', 'num'], ['积分', 'points', 'num'], ['金额（元）', 'amount (yuan)', 'num']];
  const m = d.settlements_by_merchant.map(row('merchant'));
  table('settlements', head('商户', 'merchant'), m.length ? m : none());
  const i = d.settlements_by_issuer.map(row('issuer'));
  table('settlements-issuer', head('积分发行社区', 'issuing community'), i.length ? i : none());
}

function renderRules(r) {
  const box = document.getElementById('rules');
  if (!r) { box.replaceChildren(label('尚未发布积分规则', 'No rule table published yet')); return; }
  const t = el('table', { 'data-rules-version': String(r.version) });
  const unit = u => u === 'PerHour' ? label('每小时', 'per hour') : label('每次', 'per event');
  const rows = r.activities.map(a => el('tr', { 'data-rule': a.id },
    el('td', {}, a.label), el('td', {}, unit(a.unit)), el('td', { class: 'num' }, a.base_points),
    el('td', {}, a.bonuses.map(b => `${b.label} +${b.points}`).join('；') || '—')));
  t.append(el('thead', {}, el('tr', {}, ...[['活动', 'activity'], ['计分方式', 'unit'], ['基础积分', 'base points'], ['加分项', 'bonuses']]
    .map(([zh, en]) => el('th', {}, label(zh, en))))), el('tbody', {}, ...rows));
  const facts = el('ul', {},
    el('li', {}, label('规则版本', 'version'), ': ', r.version),
    el('li', {}, label('最低评分', 'minimum rating'), `: ${r.min_rating} / 5`),
    el('li', {}, label('新人加倍', 'newcomer multiplier'), `: ×${r.newcomer_multiplier}（前 ${r.newcomer_awards} 次 / first ${r.newcomer_awards} awards）`),
    el('li', {}, label('单次上限', 'cap per award'), `: ${r.award_cap}`),
    el('li', {}, label('兑换前最少服务小时', 'hours served before redeeming'), `: ${r.min_hours_before_redeem}`),
    el('li', {}, label('星级门槛（累计积分）', 'star thresholds (lifetime points)'), ': ',
      r.star_thresholds.map((p, i) => `${'★'.repeat(i + 1)} ${p}`).join(' · ')));
  box.replaceChildren(t, facts);
}

function renderFederation(d, st) {
  const cp = d.checkpoint;
  const box = document.getElementById('federation');
  box.replaceChildren(el('ul', {},
    el('li', {}, label('已连接节点', 'connected peers'), ': ', el('b', { 'data-figure': 'peers', 'data-value': String(d.connected_peers) }, d.connected_peers)),
    el('li', {}, label('本社区最新检查点', 'latest checkpoint of this ledger'), ': ',
      cp ? el('span', { 'data-figure': 'checkpoint-size', 'data-value': String(cp.size) },
        `${cp.size} 条 entries, root ${short(cp.root)}, ${localTime(cp.time_ms)}`) : label('暂无', 'none yet')),
    el('li', {}, label('联署社区', 'cosigned by'), ': ',
      el('span', { 'data-figure': 'cosigners', 'data-value': String(cp ? cp.cosigners.length : 0) },
        cp && cp.cosigners.length ? cp.cosigners.join(', ') : '—'))));
  const rows = st.ledgers.map(l => el('tr', { 'data-ledger': l.community, 'data-size': String(l.size) },
    el('td', {}, `${l.name} (${l.community})`), el('td', {}, l.district), el('td', { class: 'num' }, num(l.size)),
    el('td', {}, el('code', {}, short(l.head))),
    el('td', { class: 'num' }, l.latest_checkpoint_size === null ? '—' : num(l.latest_checkpoint_size)),
    el('td', { class: 'num' }, l.latest_checkpoint_cosigners),
    el('td', {}, l.faulty ? el('span', { class: 'bad' }, label('已隔离', 'quarantined')) : el('span', { class: 'ok' }, label('正常', 'ok')))));
  table('ledgers', [['社区', 'community'], ['街道/区', 'district'], ['账本条数', 'entries', 'num'], ['账本头', 'head'],
    ['检查点', 'checkpoint', 'num'], ['联署数', 'cosigners', 'num'], ['状态', 'state']], rows);
  const alerts = document.getElementById('alerts');
  alerts.setAttribute('data-alerts', String(st.alerts.length));
  if (st.alerts.length) {
    alerts.hidden = false;
    alerts.replaceChildren(el('b', {}, label('双重签署警报', 'Equivocation alert')), ': ',
      st.alerts.map(a => `${a.community} @ ${a.position}`).join(', '));
  }
}

async function getJson(path) {
  const r = await fetch(path, { cache: 'no-store' });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function main() {
  try {
    const [d, st] = await Promise.all([getJson('/v1/disclosure'), getJson('/v1/status')]);
    document.getElementById('community').textContent = `${d.name} · ${d.community} · ${d.district} · ${d.federation}`;
    document.getElementById('generated').textContent =
      `生成于 generated ${localTime(d.generated_ms)} · 账本 ledger ${num(d.ledger_size)} 条 entries · head ${short(d.ledger_head)}`;
    renderCards(d);
    renderDaily(d.daily);
    renderTimebank(d.daily);
    renderActivities(d.activities);
    renderVolunteers(d);
    renderSettlements(d);
    renderRules(d.rules);
    renderFederation(d, st);
    document.body.dataset.ready = 'true';
  } catch (e) {
    const box = document.getElementById('error');
    box.hidden = false;
    box.textContent = `数据加载失败 Could not load the figures: ${e.message}`;
    document.body.dataset.error = e.message;
  }
}

main();
