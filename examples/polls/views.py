"""Views chosen to make each kind of metric visible on a dashboard."""

import random
import time

from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render

from django_statsd_push import statsd
from polls.models import Question


def index(request):
    statsd.incr("example.index.visits")
    return render(request, "polls/index.html")


def poll_list(request):
    # Deliberate N+1: one query for the questions, one more per question for its
    # choices. request.polls_list.GET.db_queries shows it.
    rows = [(q, sum(c.votes for c in q.choices.all())) for q in Question.objects.all()]
    return render(request, "polls/list.html", {"rows": rows})


def detail(request, question_id):
    with statsd.timer("example.detail.render"):
        question = get_object_or_404(Question, pk=question_id)
        choices = list(question.choices.values_list("text", "votes"))
        return render(request, "polls/detail.html", {"question": question, "choices": choices})


def cached(request):
    body = cache.get("example:cached")
    if body is None:
        body = f"rendered at {time.time():.0f}, {Question.objects.count()} questions"
        cache.set("example:cached", body, 30)
    return render(request, "polls/text.html", {"text": body})


def slow(request):
    time.sleep(random.uniform(0.1, 0.3))
    return render(request, "polls/text.html", {"text": "slow: 100-300 ms in the view"})


def error(request):
    raise RuntimeError("deliberate error for the example dashboard")


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")
