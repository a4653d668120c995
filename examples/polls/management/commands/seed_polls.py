"""Create demo questions and choices (idempotent: existing questions are kept)."""

import random

from django.core.management.base import BaseCommand
from django.db import transaction

from polls.models import Choice, Question


class Command(BaseCommand):
    help = "Create demo polls for the example project."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=20, help="number of questions")

    def handle(self, *args, count, **options):
        rng = random.Random(42)  # the same demo data on every machine
        created = 0
        with transaction.atomic():
            for i in range(1, count + 1):
                question, new = Question.objects.get_or_create(text=f"Demo question {i}?")
                if new:
                    created += 1
                    Choice.objects.bulk_create(
                        Choice(question=question, text=f"Answer {j}", votes=rng.randint(0, 50))
                        for j in range(1, 5)
                    )
        self.stdout.write(f"seed_polls: {created} questions created, {count - created} already there")
