// Times for people, on every page (templates/layout.jinja2).
//
// The server renders each time (myapp/views/times.py, the filter "when"):
// <time datetime="ISO" title="exact">2026-11-23 02:44:50 JST</time>, and
// after it, in lists, <small data-relative-to="ISO">3 s ago</small>.  This
// script keeps those "3 s ago" fresh, and renders the times the live
// updates bring (static/jobs.js) as the server would.  Without it the page
// still shows every time, as of its rendering.
(function () {
  'use strict';

  var REFRESH_MS = 1000;
  // As myapp.views.times.UNITS: the largest unit that fits, whole.
  var UNITS = [[86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']];

  var root = document.documentElement;
  // The app's zone: its name and its abbreviation per offset, around now.
  var zone = JSON.parse(root.dataset.timeZone || '{"abbreviations": {}}');
  // Counted on the server's clock: a browser's that runs late would say
  // "in 2 s" of what happened 1 s ago.
  var skew = root.dataset.now ? Date.parse(root.dataset.now) - Date.now() : 0;

  function now() {
    return Date.now() + skew;
  }

  function relativeText(moment) {
    var seconds = (now() - moment) / 1000;
    var amount = Math.abs(seconds);
    if (amount < 1) {
      return 'just now';
    }
    for (var i = 0; i < UNITS.length; i++) {
      if (amount >= UNITS[i][0]) {
        var text = Math.floor(amount / UNITS[i][0]) + ' ' + UNITS[i][1];
        return seconds > 0 ? text + ' ago' : 'in ' + text;
      }
    }
  }

  function refresh() {
    var shown = document.querySelectorAll('[data-relative-to]');
    Array.prototype.forEach.call(shown, function (element) {
      element.textContent = relativeText(Date.parse(element.dataset.relativeTo));
    });
  }

  // An ISO time of the JSON API (2026-11-23T02:44:50.123+09:00, in the
  // app's zone), as myapp.views.times.readable and exact write it.
  function parts(iso) {
    var offset = iso.slice(23);
    var abbreviation = zone.abbreviations[offset] || 'UTC' + offset;
    var where = 'UTC' + offset;
    if (zone.name && zone.name !== abbreviation) {
      where = zone.name + ', ' + where;
    }
    var day = iso.slice(0, 10) + ' ';
    return {
      readable: day + iso.slice(11, 19) + ' ' + abbreviation,
      exact: day + iso.slice(11, 23) + ' ' + abbreviation + ' (' + where + ')'
    };
  }

  // The nodes the filter "when" renders for iso, "3 s ago" too if
  // relative.
  function render(iso, relative) {
    var shown = parts(iso);
    var time = document.createElement('time');
    time.dateTime = iso;
    time.title = shown.exact;
    time.textContent = shown.readable;
    if (!relative) {
      return [time];
    }
    var ago = document.createElement('small');
    ago.className = 'relative';
    ago.dataset.relativeTo = iso;
    ago.textContent = relativeText(Date.parse(iso));
    return [time, document.createTextNode(' '), ago];
  }

  window.myappTimes = {render: render};
  refresh();
  window.setInterval(refresh, REFRESH_MS);
})();
