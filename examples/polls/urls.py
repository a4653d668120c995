from django.urls import path

from polls import views

app_name = "polls"
urlpatterns = [
    path("", views.poll_list, name="list"),
    path("<int:question_id>/", views.detail, name="detail"),
]
