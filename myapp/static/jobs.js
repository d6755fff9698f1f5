// Live updates for the job pages (templates/job.jinja2, jobs.jinja2).
//
// The pages work without this script: it polls the JSON API while a job
// on the page is unfinished and updates, in place, the parts that carry a
// data-field (templates/job_parts.jinja2).  It stops once they finish.
(function () {
  'use strict';

  var POLL_MS = 700;
  var RETRY_MS = 3000;  // after a network error: the server may be restarting
  // As myapp.models.job.FINISHED: nothing more will happen to the job.
  var FINISHED = ['SUCCESS', 'FAILURE', 'REVOKED'];

  function isFinished(job) {
    return FINISHED.indexOf(job.state) !== -1;
  }

  // As the server rendered it, or as last updated.
  function shownFinished(container) {
    return FINISHED.indexOf(field(container, 'state').textContent) !== -1;
  }

  function field(container, name) {
    return container.querySelector('[data-field="' + name + '"]');
  }

  function setText(container, name, text) {
    var element = field(container, name);
    if (element) {
      element.textContent = text === null || text === undefined ? '' : text;
    }
  }

  function setHidden(container, name, hidden) {
    var element = field(container, name);
    if (element) {
      element.hidden = hidden;
    }
  }

  // Times arrive as the API writes them (ISO 8601, in the app's zone) and
  // are shown as the server shows them, by static/times.js; with
  // data-relative, "3 s ago" too.
  function setTime(container, name, value) {
    var element = field(container, name);
    if (!element || (element.querySelector('time') || {}).dateTime === value) {
      return;  // unchanged: its "3 s ago" is times.js's to refresh
    }
    if (!value) {
      element.textContent = '—';
    } else if (window.myappTimes) {
      var nodes = window.myappTimes.render(value, element.hasAttribute('data-relative'));
      element.replaceChildren.apply(element, nodes);
    } else {
      var time = document.createElement('time');
      time.dateTime = value;
      time.textContent = value;
      element.replaceChildren(time);
    }
  }

  function showState(container, job) {
    var state = field(container, 'state');
    state.textContent = job.state;
    state.className = 'state state-' + job.state.toLowerCase();
  }

  function showProgress(container, job) {
    var bar = field(container, 'progress');
    var progress = job.progress;
    var reported = Boolean(progress && progress.total > 0);
    if (reported) {
      bar.max = progress.total;
      bar.value = Math.min(progress.current || 0, progress.total);
      bar.textContent = progress.current + ' of ' + progress.total;
    } else {
      bar.removeAttribute('value');  // indeterminate
    }
    setText(container, 'progress-message', progress && progress.message);
    setHidden(container, 'progress-block', isFinished(job) && !reported);
  }

  function showOutcome(container, job) {
    var succeeded = job.state === 'SUCCESS';
    // A preview, as the server renders it: the start of the result's JSON.
    var result = succeeded ? job.result_preview : '';
    var error = job.error ? job.error.type + ': ' + job.error.message : '';
    // The dashboard's row: one cell.
    setText(container, 'outcome', succeeded ? result : error);
    var outcome = field(container, 'outcome');
    if (outcome) {
      outcome.title = outcome.textContent;  // the whole of what is cut
    }
    // The job page: a section each.
    setText(container, 'result', result);
    setHidden(container, 'result-block', !succeeded);
    setHidden(container, 'result-whole', !(succeeded && job.result_truncated));
    setText(container, 'error-type', job.error && job.error.type);
    setText(container, 'error-message', job.error && job.error.message);
    setHidden(container, 'error-block', !job.error);
  }

  function showJob(container, job) {
    showState(container, job);
    showProgress(container, job);
    showOutcome(container, job);
    setText(container, 'worker', job.worker || '—');
    setText(container, 'retries', job.retries);
    setTime(container, 'sent_at', job.sent_at);
    setTime(container, 'started_at', job.started_at);
    setTime(container, 'finished_at', job.finished_at);
    if (isFinished(job)) {
      setHidden(container, 'cancel', true);
    }
  }

  // GET url every POLL_MS; update(data) says whether to go on.
  function poll(url, update) {
    function later(delay) {
      window.setTimeout(tick, delay);
    }
    function tick() {
      fetch(url, {headers: {Accept: 'application/json'}})
        .then(function (response) {
          if (!response.ok) {
            throw new Error(url + ': HTTP ' + response.status);
          }
          return response.json().then(function (data) {
            if (update(data)) {
              later(POLL_MS);
            }
          });
        }, function () {
          later(RETRY_MS);
        })
        .catch(function (error) {
          console.warn('jobs.js: live updates stopped:', error);
        });
    }
    later(POLL_MS);
  }

  function followJobPage(page) {
    if (shownFinished(page)) {
      return;
    }
    poll(page.dataset.jobApi, function (job) {
      showJob(page, job);
      return !isFinished(job);
    });
  }

  function followDashboard(table) {
    function row(job) {
      return table.querySelector('tr[data-job-id="' + CSS.escape(job.id) + '"]');
    }
    var rows = table.querySelectorAll('tr[data-job-id]');
    var unfinished = Array.prototype.some.call(rows, function (each) {
      return !shownFinished(each);
    });
    if (!unfinished) {
      return;
    }
    poll(table.dataset.jobsApi, function (page) {
      var shown = page.jobs.filter(row);
      shown.forEach(function (job) {
        showJob(row(job), job);
      });
      return shown.some(function (job) { return !isFinished(job); });
    });
  }

  var page = document.querySelector('[data-job-api]');
  if (page) {
    followJobPage(page);
  }
  var table = document.querySelector('[data-jobs-api]');
  if (table) {
    followDashboard(table);
  }
})();
