from django.db import models


class Question(models.Model):
    text = models.CharField(max_length=200, unique=True)
    published = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.text


class Choice(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="choices")
    text = models.CharField(max_length=200)
    votes = models.IntegerField(default=0)

    def __str__(self) -> str:
        return self.text
