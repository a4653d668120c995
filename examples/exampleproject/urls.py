from django.urls import include, path

from polls import views

urlpatterns = [
    path("", views.index, name="index"),
    path("polls/", include("polls.urls")),
    path("cached/", views.cached, name="cached"),
    path("slow/", views.slow, name="slow"),
    path("error/", views.error, name="error"),
    path("healthz", views.healthz, name="healthz"),
]
