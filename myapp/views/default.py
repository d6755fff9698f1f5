from pyramid.view import view_config
from sqlalchemy import select

from .. import models


@view_config(route_name='home', renderer='myapp:templates/home.jinja2')
def home(request):
    recent = request.dbsession.scalars(
        select(models.Calculation)
        .order_by(models.Calculation.id.desc()).limit(10)).all()
    return {'calculations': recent}
